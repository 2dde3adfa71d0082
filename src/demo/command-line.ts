/**
 * Reads the command lines vmdesk sends to a host into words, without a shell,
 * for the demo hypervisor. Pure; a demo, never used by a real code path.
 */

/**
 * Splits a command line into simple commands joined by `&&`, each a list of
 * words, following POSIX.1-2017 XCU 2.2 for what vmdesk sends (quoteArg's
 * single quotes and `'\''`, double quotes, backslashes). Anything else a shell
 * would interpret (`;`, `|`, `$`, backquotes, redirections, globs, comments)
 * gives undefined: the demo never guesses what such a line means.
 */
export function splitCommandLine(line: string): string[][] | undefined {
  const commands: string[][] = [[]];
  let word = '';
  let inWord = false;
  const endWord = () => {
    if (inWord) commands[commands.length - 1]!.push(word);
    word = '';
    inWord = false;
  };
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === ' ' || c === '\t') {
      endWord();
    } else if (c === "'") {
      const close = line.indexOf("'", i + 1);
      if (close < 0) return undefined;
      word += line.slice(i + 1, close);
      inWord = true;
      i = close;
    } else if (c === '"') {
      inWord = true;
      for (i++; ; i++) {
        const d = line[i];
        if (d === undefined || d === '$' || d === '`') return undefined;
        if (d === '"') break;
        if (d === '\\' && i + 1 < line.length && '$`"\\\n'.includes(line[i + 1]!)) {
          if (line[i + 1] !== '\n') word += line[i + 1];
          i++;
        } else {
          word += d;
        }
      }
    } else if (c === '\\') {
      if (i + 1 >= line.length) return undefined;
      if (line[i + 1] !== '\n') {
        word += line[i + 1];
        inWord = true;
      }
      i++;
    } else if (c === '&' && line[i + 1] === '&' && !inWord) {
      if (commands[commands.length - 1]!.length === 0) return undefined;
      commands.push([]);
      i++;
    } else if (/[|;&<>()$`\n*?[]/.test(c) || ((c === '#' || c === '~') && !inWord)) {
      return undefined;
    } else {
      word += c;
      inWord = true;
    }
  }
  endWord();
  return commands.every((cmd) => cmd.length > 0) ? commands : undefined;
}
