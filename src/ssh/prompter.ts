/**
 * How the ssh layer asks a person something (a passphrase, a password, "trust
 * this host key?"). No prompter means batch mode: nothing is asked and the
 * operation fails with a clear error instead, like OpenSSH's BatchMode.
 */
export interface Prompter {
  /** Ask one question; `echo: false` hides the answer (secrets). Rejects when no answer can be had. */
  ask(question: string, opts: { echo: boolean }): Promise<string>;
}
