// The page: log in against authd, show the token's claims, keep the pair fresh, call
// downstream with the access token, log out. The tokens live in `session` and nowhere else.
import type { Claims, TokenPair } from "./gen/authd/v1/auth_pb";
import {
  authClient,
  bearer,
  describe,
  endpointsFrom,
  formatError,
  greeterClient,
  isUnauthenticated,
} from "./api";

const endpoints = endpointsFrom(location.search);
const auth = authClient(endpoints.authd);
const greeter = greeterClient(endpoints.downstream);

/** The signed-in user's tokens: in memory only, so a reload forgets them. */
interface Session {
  accessToken: string;
  refreshToken: string;
  refreshTimer: number;
}
let session: Session | undefined;
/** The refresh in flight: a timer and a refused call must not both spend the same token. */
let refreshing: Promise<void> | undefined;

function el<T extends HTMLElement = HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page has no #${id}`);
  return found as T;
}

const ui = {
  form: el<HTMLFormElement>("login-form"),
  username: el<HTMLInputElement>("username"),
  password: el<HTMLInputElement>("password"),
  loginPanel: el("login-panel"),
  sessionPanel: el("session-panel"),
  claimUsername: el("claim-username"),
  claimSub: el("claim-sub"),
  claimRoles: el("claim-roles"),
  claimExp: el("claim-exp"),
  refreshAt: el("refresh-at"),
  greeting: el("greeting"),
  status: el("status"),
  error: el("error"),
  buttons: Array.from(document.querySelectorAll("button")),
};

el("authd-url").textContent = endpoints.authd;
el("downstream-url").textContent = endpoints.downstream;

/** Actions running now (a timed refresh may overlap a click). */
let busy = 0;

/** Run one action: buttons off while any runs, then its outcome or its error. */
async function run(doing: string, action: () => Promise<string>): Promise<void> {
  ui.status.textContent = doing;
  ui.error.textContent = "";
  delete ui.error.dataset.code;
  busy += 1;
  ui.buttons.forEach((b) => (b.disabled = true));
  try {
    ui.status.textContent = await action();
  } catch (e) {
    const err = describe(e);
    ui.status.textContent = "";
    ui.error.textContent = formatError(err);
    ui.error.dataset.code = err.code;
  } finally {
    busy -= 1;
    ui.buttons.forEach((b) => (b.disabled = busy > 0));
  }
}

function credentials(): { username: string; password: string } {
  return { username: ui.username.value.trim(), password: ui.password.value };
}

async function login(): Promise<string> {
  const pair = await auth.issue(credentials());
  ui.password.value = "";
  await startSession(pair);
  return `Logged in as ${ui.claimUsername.textContent}.`;
}

async function register(): Promise<string> {
  await auth.register(credentials());
  return login();
}

/** Keep `pair`, show what authd's Validate says about it, and refresh at 80% of its life. */
async function startSession(pair: TokenPair): Promise<void> {
  const { claims } = await auth.validate({ token: pair.accessToken });
  if (session) window.clearTimeout(session.refreshTimer);
  const delayMs = Math.max(1_000, Number(pair.expiresIn) * 1_000 * 0.8);
  const refreshTimer = window.setTimeout(() => {
    void run("Refreshing the tokens…", async () => {
      await refresh();
      return "Tokens refreshed before the access token expired.";
    });
  }, delayMs);
  session = { accessToken: pair.accessToken, refreshToken: pair.refreshToken, refreshTimer };
  showClaims(claims);
  ui.refreshAt.textContent = new Date(Date.now() + delayMs).toLocaleTimeString();
  ui.loginPanel.hidden = true;
  ui.sessionPanel.hidden = false;
}

function showClaims(claims: Claims | undefined): void {
  ui.claimUsername.textContent = claims?.username ?? "";
  ui.claimSub.textContent = claims?.sub ?? "";
  ui.claimRoles.textContent = claims?.roles.length ? claims.roles.join(", ") : "(none)";
  ui.claimExp.textContent = claims ? new Date(Number(claims.exp) * 1_000).toLocaleString() : "";
}

/** Spend the refresh token for a new pair; one at a time. A refused refresh ends the session. */
function refresh(): Promise<void> {
  refreshing ??= (async () => {
    const current = session;
    if (!current) throw new Error("not logged in");
    try {
      await startSession(await auth.refresh({ refreshToken: current.refreshToken }));
    } catch (e) {
      if (isUnauthenticated(e)) forget();
      throw e;
    }
  })().finally(() => (refreshing = undefined));
  return refreshing;
}

/** Greeter/Hello with the access token; on UNAUTHENTICATED, refresh once and try again. */
async function hello(): Promise<string> {
  const call = () => greeter.hello({}, session ? bearer(session.accessToken) : {});
  let reply;
  try {
    reply = await call();
  } catch (e) {
    if (!session || !isUnauthenticated(e)) throw e;
    await refresh();
    reply = await call();
  }
  ui.greeting.textContent = reply.message;
  return `downstream greeted ${reply.username} (user id ${reply.userId}).`;
}

/** Revoke the session at authd, then forget the tokens (even if authd could not be told). */
async function logout(): Promise<string> {
  const current = session;
  if (!current) return "Not logged in.";
  try {
    await auth.revoke({ refreshToken: current.refreshToken });
  } finally {
    forget();
  }
  return "Logged out: the session is revoked and the page holds no tokens.";
}

/** Drop the tokens and everything shown about them. */
function forget(): void {
  if (session) window.clearTimeout(session.refreshTimer);
  session = undefined;
  showClaims(undefined);
  ui.refreshAt.textContent = "";
  ui.greeting.textContent = "";
  ui.loginPanel.hidden = false;
  ui.sessionPanel.hidden = true;
}

ui.form.addEventListener("submit", (event) => {
  event.preventDefault();
  void run("Logging in…", login);
});
el("register").addEventListener("click", () => {
  if (ui.form.reportValidity()) void run("Registering…", register);
});
el("refresh").addEventListener("click", () =>
  void run("Refreshing the tokens…", async () => {
    await refresh();
    return "Tokens refreshed.";
  }),
);
el("hello").addEventListener("click", () => void run("Calling downstream…", hello));
el("logout").addEventListener("click", () => void run("Logging out…", logout));
