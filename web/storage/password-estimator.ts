/**
 * The password-strength estimator (docs/PROTOCOL.md 6.1): zxcvbn-ts with its common-password list and
 * keyboard graphs. ~230 kB gzip of dictionaries, so it is its own chunk, loaded with a dynamic import
 * only when a new password is chosen (first run, change password), never on the lock screen's first
 * paint nor on a plain unlock. The English word lists (~600 kB gzip more) are left out: the password
 * list is what catches the passwords guessed first.
 */
import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import { adjacencyGraphs, dictionary } from '@zxcvbn-ts/language-common';
import { translations } from '@zxcvbn-ts/language-en';

const zxcvbn = new ZxcvbnFactory({
  dictionary: { 'passwords-common': dictionary['passwords-common'] },
  graphs: adjacencyGraphs,
  translations,
});

/** Words that make a password easier to guess here. */
const CONTEXT_WORDS = ['zeroroom', 'zero', 'room', 'chat'];

export interface Estimate {
  /** 0 (too guessable) .. 4 (very unguessable), zxcvbn's scale. */
  readonly score: number;
  readonly warning: string | null;
  readonly suggestions: readonly string[];
}

export function estimate(password: string): Estimate {
  const r = zxcvbn.check(password, CONTEXT_WORDS);
  return { score: r.score, warning: r.feedback.warning, suggestions: r.feedback.suggestions };
}
