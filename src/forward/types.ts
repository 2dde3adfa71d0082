/** Shared shapes of the forward layer. */

/** Where a forwarded connection goes, as seen from the last hop (the destination). */
export type ForwardTarget =
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'unix'; path: string };

/** One `-L`-style forward: a local listener and its remote target. */
export interface ForwardSpec {
  /** Local address to bind; 127.0.0.1 unless the user asked otherwise. */
  bindAddress: string;
  /** Local port to listen on (1..65535). */
  localPort: number;
  target: ForwardTarget;
  /** The text the user gave, for messages. */
  source: string;
}
