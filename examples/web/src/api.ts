// The two gRPC-Web clients the page uses, and how their errors are told to a person.
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";

import { AuthService } from "./gen/authd/v1/auth_pb";
import { Greeter } from "./gen/downstream/v1/hello_pb";
import { ErrorInfoSchema } from "./gen/google/rpc/error_details_pb";

export type AuthClient = Client<typeof AuthService>;
export type GreeterClient = Client<typeof Greeter>;

/** Where the page finds authd and downstream: `?authd=...&downstream=...`, or the defaults. */
export interface Endpoints {
  authd: string;
  downstream: string;
}

export function endpointsFrom(search: string): Endpoints {
  const params = new URLSearchParams(search);
  return {
    authd: params.get("authd") || "http://127.0.0.1:50051",
    downstream: params.get("downstream") || "http://127.0.0.1:50061",
  };
}

export function authClient(baseUrl: string): AuthClient {
  return createClient(AuthService, grpcWeb(baseUrl));
}

export function greeterClient(baseUrl: string): GreeterClient {
  return createClient(Greeter, grpcWeb(baseUrl));
}

function grpcWeb(baseUrl: string) {
  // Binary protobuf (application/grpc-web+proto): what tonic-web speaks.
  return createGrpcWebTransport({ baseUrl, useBinaryFormat: true });
}

/** `authorization: Bearer <token>` for a call's options. */
export function bearer(accessToken: string): { headers: HeadersInit } {
  return { headers: { authorization: `Bearer ${accessToken}` } };
}

/** A failed call, as the page shows it. */
export interface CallError {
  /** The gRPC status code name, e.g. `UNAUTHENTICATED`. */
  code: string;
  message: string;
  /** The `google.rpc.ErrorInfo` reason from grpc-status-details-bin, e.g. `TOKEN_EXPIRED`. */
  reason?: string;
  /** Set when the request never got an answer (network down, or refused by CORS). */
  network: boolean;
}

export function isUnauthenticated(e: unknown): boolean {
  return e instanceof ConnectError && e.code === Code.Unauthenticated;
}

export function describe(e: unknown): CallError {
  const err = ConnectError.from(e);
  const reason = err.findDetails(ErrorInfoSchema)[0]?.reason;
  // fetch() rejects with a TypeError when there is no answer the page may read: the server
  // is down, or the browser refused the response (or the CORS preflight) for this origin.
  const network = err.cause instanceof TypeError;
  return {
    code: codeName(err.code),
    message: err.rawMessage,
    ...(reason ? { reason } : {}),
    network,
  };
}

export function formatError(e: CallError): string {
  let text = `${e.code}: ${e.message}`;
  if (e.reason) text += ` (reason ${e.reason})`;
  if (e.network) {
    text +=
      " (no answer reached the page: is the server running, and does it allow this " +
      `page's origin ${location.origin} for CORS?)`;
  }
  return text;
}

/** `Code.DeadlineExceeded` -> `DEADLINE_EXCEEDED`, the names grpcurl and the docs use. */
function codeName(code: Code): string {
  return (Code[code] ?? `CODE_${code}`).replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}
