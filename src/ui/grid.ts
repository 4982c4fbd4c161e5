// An instance's subtasks as a grid of cells on a canvas: one cell per node in shard order,
// coloured by status with a glyph in it (never colour alone), a new row per wave. It
// redraws only the cells that changed, so a 1,000-node broadcast updates without stalling.
// Keyboard: the canvas takes focus, arrow keys move the selection, Enter follows that
// node's output; the selected cell is described in a live region.
import type { SubtaskView } from './api.js';
import { GLYPH } from './dom.js';
import { outcomeText } from '../records/outcome-text.js';
import { shortId } from '../core/human.js';

const GAP = 3;
/** Cell size: big for a few nodes, small enough for 1,000 on a laptop screen. */
const cellFor = (count: number) => (count <= 50 ? 32 : count <= 300 ? 24 : 18);
const COLOURS: Record<string, string> = { succeeded: '#2da44e', failed: '#cf222e', cancelled: '#8c959f', running: '#0969da', pending: '#d0d7de', unreleased: '#f6f8fa' };

export function cellStatus(s: SubtaskView): string {
  return s.status === 'pending' && !s.released ? 'unreleased' : s.status;
}

export class Grid {
  readonly canvas: HTMLCanvasElement;
  readonly live: HTMLElement;
  private cells: SubtaskView[] = [];
  private drawn: string[] = [];
  private positions: { x: number; y: number }[] = [];
  private selected = 0;
  private columns = 1;
  private cell = 18;

  constructor(private readonly onPick: (s: SubtaskView) => void) {
    this.canvas = document.createElement('canvas');
    this.canvas.tabIndex = 0;
    this.canvas.setAttribute('role', 'img');
    this.canvas.setAttribute('aria-label', 'subtasks by node: use the arrow keys to move, Enter to follow the output');
    this.live = document.createElement('p');
    this.live.setAttribute('aria-live', 'polite');
    this.live.className = 'cell-info';
    this.canvas.addEventListener('mousemove', (e) => this.hover(e));
    this.canvas.addEventListener('click', (e) => {
      const i = this.at(e);
      if (i !== null) this.pick(i);
    });
    this.canvas.addEventListener('keydown', (e) => this.key(e));
  }

  /** Lays the cells out again (a new instance, a new width) and draws them all. */
  layout(subtasks: SubtaskView[], width: number): void {
    this.cells = subtasks;
    this.cell = cellFor(subtasks.length);
    const CELL = this.cell;
    this.columns = Math.max(1, Math.floor((width - GAP) / (CELL + GAP)));
    this.positions = [];
    let row = 0;
    let col = 0;
    let wave = subtasks[0]?.wave ?? 1;
    for (const s of subtasks) {
      if (s.wave !== wave || col === this.columns) {
        row += 1;
        col = 0;
        wave = s.wave;
      }
      this.positions.push({ x: GAP + col * (CELL + GAP), y: GAP + row * (CELL + GAP) });
      col += 1;
    }
    const ratio = window.devicePixelRatio || 1;
    const height = GAP + (row + 1) * (CELL + GAP);
    this.canvas.width = Math.floor(width * ratio);
    this.canvas.height = Math.floor(height * ratio);
    this.canvas.style.width = `${width}px`;
    this.canvas.style.height = `${height}px`;
    const ctx = this.canvas.getContext('2d');
    ctx?.setTransform(ratio, 0, 0, ratio, 0, 0);
    this.drawn = [];
    this.update(subtasks);
  }

  /** Draws the cells whose status changed since the last draw. */
  update(subtasks: SubtaskView[]): void {
    this.cells = subtasks;
    const CELL = this.cell;
    const ctx = this.canvas.getContext('2d');
    if (!ctx) return;
    ctx.font = `${CELL - 6}px system-ui, sans-serif`;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    subtasks.forEach((s, i) => {
      const status = cellStatus(s);
      const key = `${status}${i === this.selected ? '*' : ''}`;
      if (this.drawn[i] === key) return;
      this.drawn[i] = key;
      const p = this.positions[i];
      if (!p) return;
      ctx.clearRect(p.x - 2, p.y - 2, CELL + 4, CELL + 4);
      ctx.fillStyle = COLOURS[status] ?? '#fff';
      ctx.fillRect(p.x, p.y, CELL, CELL);
      ctx.strokeStyle = i === this.selected ? '#1d2330' : '#afb8c1';
      ctx.lineWidth = i === this.selected ? 2 : 1;
      ctx.strokeRect(p.x + 0.5, p.y + 0.5, CELL - 1, CELL - 1);
      ctx.fillStyle = status === 'pending' || status === 'unreleased' ? '#57606a' : '#fff';
      ctx.fillText(GLYPH[status] ?? '', p.x + CELL / 2, p.y + CELL / 2 + 1);
    });
  }

  describe(s: SubtaskView): string {
    const status = cellStatus(s);
    const outcome = status === 'unreleased' ? 'pending, not released' : outcomeText(s);
    return `${s.nodeName ?? shortId(s.nodeId)}: ${outcome}; shard ${s.shardIndex}, wave ${s.wave}, attempt ${s.attempt}`;
  }

  private at(e: MouseEvent): number | null {
    const CELL = this.cell;
    const r = this.canvas.getBoundingClientRect();
    const x = e.clientX - r.left;
    const y = e.clientY - r.top;
    const i = this.positions.findIndex((p) => x >= p.x && x < p.x + CELL && y >= p.y && y < p.y + CELL);
    return i === -1 ? null : i;
  }

  private hover(e: MouseEvent): void {
    const i = this.at(e);
    const s = i === null ? undefined : this.cells[i];
    this.canvas.title = s ? this.describe(s) : '';
  }

  private key(e: KeyboardEvent): void {
    const moves: Record<string, number> = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: this.columns, ArrowUp: -this.columns, Home: -Infinity, End: Infinity };
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      return this.pick(this.selected);
    }
    const move = moves[e.key];
    if (move === undefined) return;
    e.preventDefault();
    this.select(Math.min(this.cells.length - 1, Math.max(0, this.selected + move)));
  }

  private select(i: number): void {
    const previous = this.selected;
    this.selected = i;
    this.drawn[previous] = '';
    this.drawn[i] = '';
    this.update(this.cells);
    const s = this.cells[i];
    if (s) this.live.textContent = this.describe(s);
  }

  private pick(i: number): void {
    this.select(i);
    const s = this.cells[i];
    if (s) this.onPick(s);
  }
}
