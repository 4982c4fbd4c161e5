// The chorus version, compiled in so the single executable knows it without package.json.
export const CHORUS_VERSION = '0.1.0';
