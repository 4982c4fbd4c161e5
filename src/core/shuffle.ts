/** Shuffles `items` in place (Fisher-Yates) with `random` in [0, 1), and returns them: seeded in simulations, Math.random in the daemon. */
export function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}
