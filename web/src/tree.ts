import type { FileEntry } from './types';

export interface TreeRow {
  depth: number;
  name: string;
  path: string;
  dir: boolean;
  size?: number;
}

/** Sorted rows of a file tree: each folder once, before its files. */
export function treeRows(list: FileEntry[]): TreeRow[] {
  const rows: TreeRow[] = [];
  const seen = new Set<string>();
  const sorted = [...list].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const f of sorted) {
    const parts = f.path.split('/');
    for (let i = 0; i < parts.length - 1; i++) {
      const dir = parts.slice(0, i + 1).join('/');
      if (!seen.has(dir)) {
        seen.add(dir);
        rows.push({ depth: i, name: parts[i] + '/', path: dir, dir: true });
      }
    }
    rows.push({ depth: parts.length - 1, name: parts[parts.length - 1], path: f.path, dir: false, size: f.size });
  }
  return rows;
}

/** CodeMirror language for a file name. */
export function languageOf(path: string): string {
  const ext = path.includes('.') ? path.slice(path.lastIndexOf('.') + 1).toLowerCase() : '';
  const map: Record<string, string> = {
    py: 'python',
    js: 'javascript',
    mjs: 'javascript',
    cjs: 'javascript',
    ts: 'typescript',
    tsx: 'typescript',
    jsx: 'javascript',
    json: 'json',
    md: 'markdown',
    markdown: 'markdown',
    c: 'cpp',
    h: 'cpp',
    cc: 'cpp',
    cpp: 'cpp',
    hpp: 'cpp',
    cxx: 'cpp',
    html: 'html',
    htm: 'html',
    vue: 'html',
    css: 'css',
    yaml: 'yaml',
    yml: 'yaml',
  };
  return map[ext] ?? 'text';
}
