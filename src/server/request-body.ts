/**
 * The JSON bodies the UI's API accepts, read and checked in one place: a body
 * is a JSON object of known fields with the declared types, at most
 * MAX_BODY_BYTES long. Anything else (`null`, an array, a string, a number
 * where a string belongs, a field nobody declared) is the client's mistake,
 * answered 400 with a stable code and never logged as a server fault.
 */
import type { IncomingMessage } from 'node:http';

export const MAX_BODY_BYTES = 16 * 1024;

export type BodyErrorCode = 'UI_BODY_NOT_JSON' | 'UI_BODY_INVALID' | 'UI_BODY_TOO_LARGE';

/** A request body the API refuses; `status` is its HTTP status. */
export class BodyError extends Error {
  readonly status: number;
  constructor(
    readonly code: BodyErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'BodyError';
    this.status = code === 'UI_BODY_TOO_LARGE' ? 413 : 400;
  }
}

/** One declared field: its JSON type, whether it must be present, and for strings the values allowed. */
export type FieldSpec =
  | { type: 'string'; isRequired?: boolean; oneOf?: readonly string[]; maxLength?: number }
  | { type: 'boolean'; isRequired?: boolean };

export type BodyShape = Readonly<Record<string, FieldSpec>>;

type FieldValue<F extends FieldSpec> = F extends { type: 'string' } ? string : boolean;
type RequiredKeys<S extends BodyShape> = { [K in keyof S]: S[K] extends { isRequired: true } ? K : never }[keyof S];

/** The typed object a body of shape `S` becomes. */
export type BodyOf<S extends BodyShape> = { [K in RequiredKeys<S>]: FieldValue<S[K]> } & { [K in Exclude<keyof S, RequiredKeys<S>>]?: FieldValue<S[K]> };

/**
 * The request's body parsed as JSON; an empty body is `{}` (a POST whose
 * fields are all optional may send nothing). The declared Content-Length is
 * checked before a byte is read.
 */
export async function readJsonBody(req: IncomingMessage, maxBytes = MAX_BODY_BYTES): Promise<unknown> {
  const tooLarge = () => new BodyError('UI_BODY_TOO_LARGE', `the request body is over ${maxBytes} bytes`);
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > maxBytes) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > maxBytes) throw tooLarge();
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof BodyError) throw err;
    // The client went away mid-body ('aborted', ECONNRESET): its doing, not a fault of ours to log.
    throw new BodyError('UI_BODY_NOT_JSON', 'the request body was cut off');
  }
  if (size === 0) return {};
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new BodyError('UI_BODY_NOT_JSON', 'the request body is not JSON');
  }
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

/** `value` checked against `shape`: an object with only declared fields, each of its declared type. */
export function checkBody<S extends BodyShape>(value: unknown, shape: S): BodyOf<S> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BodyError('UI_BODY_INVALID', `the request body must be a JSON object, not ${kindOf(value)}`);
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!Object.hasOwn(shape, key)) throw new BodyError('UI_BODY_INVALID', `unknown field ${JSON.stringify(key).slice(0, 60)} in the request body`);
  }
  for (const [key, spec] of Object.entries(shape)) {
    const v = Object.hasOwn(record, key) ? record[key] : undefined;
    if (v === undefined) {
      if (spec.isRequired === true) throw new BodyError('UI_BODY_INVALID', `the request body needs the field "${key}"`);
      continue;
    }
    if (typeof v !== spec.type) throw new BodyError('UI_BODY_INVALID', `"${key}" must be a ${spec.type}, not ${kindOf(v)}`);
    if (spec.type === 'string') {
      const s = v as string;
      if (spec.maxLength !== undefined && s.length > spec.maxLength) throw new BodyError('UI_BODY_INVALID', `"${key}" is longer than ${spec.maxLength} characters`);
      if (spec.oneOf !== undefined && !spec.oneOf.includes(s)) throw new BodyError('UI_BODY_INVALID', `"${key}" must be one of ${spec.oneOf.map((o) => JSON.stringify(o)).join(', ')}`);
    }
  }
  return record as BodyOf<S>;
}

/** Reads and checks a body in one step. */
export async function readBody<S extends BodyShape>(req: IncomingMessage, shape: S): Promise<BodyOf<S>> {
  return checkBody(await readJsonBody(req), shape);
}
