// The README as a test reads it: its fenced code blocks, by the section they stand in, exactly as written.
import { readFileSync } from 'node:fs';

export interface CodeBlock {
  /** The fence's info string (`sh`, `graphql`, …). */
  lang: string;
  /** The `##` heading the block stands under ('' before the first). */
  section: string;
  text: string;
}

export function readmeBlocks(file = 'README.md'): CodeBlock[] {
  const blocks: CodeBlock[] = [];
  let section = '';
  let open: { lang: string; lines: string[] } | undefined;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (open) {
      if (line.startsWith('```')) {
        blocks.push({ lang: open.lang, section, text: open.lines.join('\n') });
        open = undefined;
      } else open.lines.push(line);
    } else if (line.startsWith('```')) open = { lang: line.slice(3).trim(), lines: [] };
    else if (line.startsWith('## ')) section = line.slice(3).trim();
  }
  return blocks;
}

/** The blocks of one section and language; throws when there are none, so a renamed section fails the test. */
export function sectionBlocks(section: string, lang: string, file = 'README.md'): string[] {
  const found = readmeBlocks(file).filter((b) => b.section === section && b.lang === lang);
  if (!found.length) throw new Error(`README.md has no \`${lang}\` block under "## ${section}"`);
  return found.map((b) => b.text);
}
