/** SVG text for the bench's drawings (chart.ts, flamegraph.ts): a leaf module, so neither imports the other. */
export function escapeXml(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
}
