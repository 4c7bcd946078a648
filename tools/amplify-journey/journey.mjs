// The billing journey with aws-amplify v6 in Node, against a running local stack.
//
// Needs: GRAPHQL_URL (chalice local, http://.../graphql), REALTIME_URL (the stack's wss://.../graphql),
// BUS_URL (POST /local/events). The real-time endpoint's certificate must be trusted:
// run.mjs starts this with NODE_EXTRA_CA_CERTS = the certificate it made, so TLS is verified.
// Exit 0 when every check passes, 1 otherwise; one line per check and a summary.

import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';

// Node 20 has fetch but no WebSocket global; amplify's real-time provider calls `new WebSocket(url, protocols)`.
// The subclass only records the URL amplify derived (checked below); it changes nothing. Set even where Node
// has a WebSocket of its own, so every Node version runs the same client.
const opened = [];
globalThis.WebSocket = class RecordingWebSocket extends WebSocket {
  constructor(url, protocols) {
    opened.push(String(url));
    super(url, protocols);
  }
};

const { Amplify } = await import('aws-amplify');
const { generateClient } = await import('aws-amplify/api');

const GRAPHQL_URL = need('GRAPHQL_URL');
const BUS_URL = need('BUS_URL');
// amplify derives the real-time URL from a GraphQL endpoint: for a host that is not
// <id>.appsync-api.<region>.amazonaws.com (a "custom domain") it appends /realtime and swaps
// http(s):// for wss:// on the same host and port. The local real-time endpoint has a port of its
// own, so subscriptions go through a second client bound to that port (amplify's multi-endpoint option,
// generateClient({ endpoint, authMode })): https://host:port/graphql becomes wss://host:port/graphql/realtime,
// which the endpoint serves (any path). A per-call `endpoint` would not do: the client's own replaces it.
const SUBSCRIBE_ENDPOINT = need('REALTIME_URL').replace(/^wss:\/\//, 'https://');
const TIMEOUT_MS = Number(process.env.JOURNEY_TIMEOUT_MS || 60_000);

const REGISTER = `mutation R($input: RegisterInput!) { register(input: $input) { accessToken user { id } } }`;
const WALLET = `{ wallet { balance } }`;
const INVOICES = `{ invoices(first: 10) { items { id sessionId total } } }`;
const ON_INVOICE = `subscription I($u: ID!) { onInvoiceGenerated(userId: $u)
  { userId invoiceId invoiceNumber sessionId total currency status } }`;
const ON_PAYMENT = `subscription P($u: ID!) { onPaymentCompleted(userId: $u)
  { userId invoiceId sessionId amount currency } }`;

const results = [];
function check(name, ok, detail = '') {
  results.push({ name, ok: Boolean(ok) });
  console.log(`${ok ? 'PASS' : 'FAIL'}  ${name}${detail ? `  (${detail})` : ''}`);
  return Boolean(ok);
}

function need(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is not set (run.mjs sets it; see docs/realtime.md)`);
    process.exit(2);
  }
  return value;
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms / 1000}s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// API key mode, as the app calls register/login: amplify sends x-api-key and no Authorization.
// The local gateway does not check the key; it lets @aws_api_key fields through without a token.
Amplify.configure({
  API: {
    GraphQL: { endpoint: GRAPHQL_URL, region: 'eu-central-1', defaultAuthMode: 'lambda', apiKey: 'local-api-key' },
  },
});
const client = generateClient(); // queries and mutations: the configured endpoint, chalice local over http
const live = generateClient({ endpoint: SUBSCRIBE_ENDPOINT, authMode: 'lambda' }); // subscriptions

async function register(name) {
  const email = `amplify.${randomUUID().slice(0, 10)}@example.com`;
  const { data } = await client.graphql({
    query: REGISTER, authMode: 'apiKey',
    variables: { input: { email, name, password: 'correct horse battery',
      vehicle: { brand: 'Kia', model: 'EV6', batteryCapacity: 77.4 } } },
  });
  return { token: data.register.accessToken, userId: data.register.user.id };
}

// The wallet is opened by choreography after register; a session billed before it exists fails the payment.
async function waitForWallet(token) {
  for (let i = 0; i < 240; i += 1) {
    const { data } = await client.graphql({ query: WALLET, authMode: 'lambda', authToken: token });
    if (data?.wallet) return;
    await sleep(250);
  }
  throw new Error('wallet never opened');
}

// One subscription through amplify: every `data` goes into `got`; an `error` message rejects `failed`.
function subscribe(query, variables, token) {
  const got = [];
  let fail;
  const failed = new Promise((_, reject) => { fail = reject; });
  failed.catch(() => {});
  const subscription = live.graphql({ query, variables, authMode: 'lambda', authToken: token }).subscribe({
    next: (message) => got.push(message.data),
    error: (error) => fail(error),
  });
  return { got, failed, close: () => subscription.unsubscribe() };
}

async function firstOf(sub, what) {
  const deadline = Date.now() + TIMEOUT_MS;
  const arrived = (async () => {
    while (sub.got.length === 0) {
      if (Date.now() > deadline) throw new Error(`${what}: nothing within ${TIMEOUT_MS / 1000}s`);
      await sleep(50);
    }
    return sub.got[0];
  })();
  return Promise.race([arrived, sub.failed]);
}

function sessionEnded(userId) {
  return { eventType: 'SESSION_ENDED', sessionId: randomUUID(), userId,
    stationId: '48f8fb15-814d-4e9d-97e1-d2caea2a162f', energyKwh: 22.4, durationMinutes: 58,
    endedAt: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') };
}

async function main() {
  console.log(`amplify GraphQL endpoint: ${GRAPHQL_URL}`);
  console.log(`subscriptions endpoint:   ${SUBSCRIBE_ENDPOINT} -> amplify connects to its /realtime over wss://`);
  const a = await register('Amy Amplify');
  const b = await register('Ben Other');
  check('register over HTTP in API-key mode (two users)', a.token && b.token, `A=${a.userId}`);
  await waitForWallet(a.token);

  const invoice = subscribe(ON_INVOICE, { u: a.userId }, a.token);
  const payment = subscribe(ON_PAYMENT, { u: a.userId }, a.token);
  // The provider sends `start` once the socket is up; give both start_acks time before the event exists
  // (live-only notifications: an event published before the start is registered is not replayed).
  await sleep(Number(process.env.JOURNEY_SUBSCRIBED_MS || 2000));

  // B's session first: had the argument filter leaked, A would see B's invoice before (or beside) their own.
  await waitForWallet(b.token);
  const theirs = sessionEnded(b.userId);
  const ours = sessionEnded(a.userId);
  const puts = [];
  for (const event of [theirs, ours]) {
    puts.push((await fetch(BUS_URL, { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(event) })).status);
  }
  check("SESSION_ENDED for B, then for A, put on the local bus", puts.every((s) => s === 202), `HTTP ${puts}`);

  const started = Date.now();
  let got;
  try {
    got = await withTimeout(Promise.all([firstOf(invoice, 'onInvoiceGenerated'), firstOf(payment, 'onPaymentCompleted')]),
      TIMEOUT_MS, 'notifications');
  } catch (error) {
    check('onInvoiceGenerated and onPaymentCompleted received', false, describe(error));
    return;
  }
  const [{ onInvoiceGenerated: inv }, { onPaymentCompleted: pay }] = got;
  check('onInvoiceGenerated and onPaymentCompleted received', inv && pay, `${Date.now() - started} ms after the put`);
  const url = new URL(opened.at(-1) ?? 'about:blank');
  check('amplify derived the wss:// URL of the local real-time endpoint',
    url.protocol === 'wss:' && url.host === new URL(SUBSCRIBE_ENDPOINT).host, `${url.origin}${url.pathname}`);
  await sleep(2000); // had B's notifications leaked, they would have arrived by now
  invoice.close();
  payment.close();
  check("only A's own session reached A (B's never did)",
    invoice.got.length === 1 && payment.got.length === 1
      && [...invoice.got, ...payment.got].every((d) => Object.values(d)[0].sessionId === ours.sessionId),
    `${invoice.got.length} invoice, ${payment.got.length} payment`);
  console.log(`  invoice: ${JSON.stringify(inv)}`);
  console.log(`  payment: ${JSON.stringify(pay)}`);

  const { data } = await client.graphql({ query: INVOICES, authMode: 'lambda', authToken: a.token });
  const stored = data.invoices.items.find((item) => item.sessionId === ours.sessionId);
  check('the invoice is stored for the session', stored, stored && `id ${stored.id}, total ${stored.total}`);
  check('invoice event: userId, sessionId, invoiceId = the stored invoice',
    inv.userId === a.userId && inv.sessionId === ours.sessionId && inv.invoiceId === stored?.id);
  check('invoice event: total = the stored total, EUR, number INV-...',
    inv.total === stored?.total && inv.currency === 'EUR' && String(inv.invoiceNumber).startsWith('INV-'),
    `${inv.total} ${inv.currency} ${inv.invoiceNumber}`);
  check('payment event: same invoiceId and sessionId, amount = invoice total',
    pay.userId === a.userId && pay.invoiceId === inv.invoiceId && pay.sessionId === ours.sessionId
      && pay.amount === inv.total && pay.currency === 'EUR', `${pay.amount} ${pay.currency}`);

  // Last on purpose: on an Unauthorized error amplify closes the socket to reconnect with fresh tokens,
  // which would disturb A's own subscriptions on the same connection.
  const spy = subscribe(ON_PAYMENT, { u: b.userId }, a.token);
  try {
    await withTimeout(firstOf(spy, 'onPaymentCompleted(B)'), 15_000, 'refusal');
    check("subscribing with another user's id is refused", false, 'a notification arrived instead');
  } catch (error) {
    const text = describe(error);
    check("subscribing with another user's id is refused",
      text.includes('Unauthorized') && text.includes('onPaymentCompleted'), text);
  } finally {
    spy.close();
  }
}

function describe(error) {
  const first = error?.errors?.[0];
  return String(first?.message ?? error?.message ?? error).slice(0, 300);
}

try {
  await main();
} catch (error) {
  check('journey ran to the end', false, describe(error));
}
const failed = results.filter((r) => !r.ok);
console.log(failed.length === 0 && results.length > 0
  ? `amplify journey: OK (${results.length} checks passed)`
  : `amplify journey: FAILED (${failed.length} of ${results.length} checks failed)`);
// amplify's connection monitor and keep-alive timers would keep Node alive.
process.exit(failed.length === 0 && results.length > 0 ? 0 : 1);
