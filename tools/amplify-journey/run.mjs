// `make amplify-journey`: a self-signed certificate, a local stack of its own with wss:// on the real-time
// endpoint, then journey.mjs (aws-amplify v6) against it. Exits with the journey's code; always stops the stack.
//
// Usage: node run.mjs <project root>   (make passes it; the venv's python runs `-m devstack`)

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(process.argv[2] || '.');
const HERE = dirname(fileURLToPath(import.meta.url));
const PYTHON = join(ROOT, '.venv', 'bin', 'python');
const READY = 'ready. Ctrl-C';
const START_TIMEOUT_MS = 180_000; // two shared cores: the store, moto and chalice local start one after another

const work = mkdtempSync(join(tmpdir(), 'amplify-journey-'));
const say = (line) => console.log(`[amplify-journey] ${line}`);

function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

// Made at run time, valid one day, for the address the stack listens on; nothing is written to the checkout.
function makeCertificate() {
  const cert = join(work, 'cert.pem');
  const key = join(work, 'key.pem');
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-keyout', key, '-out', cert], { encoding: 'utf8' });
  if (made.status !== 0) throw new Error(`openssl failed: ${made.stderr || made.error}`);
  return { cert, key };
}

async function startStack({ cert, key }) {
  const names = ['http', 'moto', 'mongo', 'ocm', 'realtime'];
  const ports = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await freePort()])));
  const dataDir = join(work, 'devstack');
  const logPath = join(work, 'stack.log');
  // Like the e2e fixture: nothing from an outer stack or real account leaks in; no OCM sync (not this journey's).
  const env = Object.fromEntries(Object.entries(process.env)
    .filter(([k]) => !/^(AWS_|MONGODB_|OCM_|JUCR_|LOCAL_)/.test(k)));
  Object.assign(env, { LOCAL_OCM_SYNC_INTERVAL: 'off', SQS_BACKOFF_BASE_SECONDS: '1', PYTHONUNBUFFERED: '1' });
  const log = openSync(logPath, 'a');
  const child = spawn(PYTHON, ['-m', 'devstack', '--http-port', ports.http, '--moto-port', ports.moto,
    '--mongo-port', ports.mongo, '--ocm-port', ports.ocm, '--realtime-port', ports.realtime,
    '--data-dir', dataDir, '--realtime-tls-cert', cert, '--realtime-tls-key', key].map(String),
  { cwd: ROOT, env, stdio: ['ignore', log, log], detached: true });
  const stack = { child, logPath, dataDir, exited: null };
  child.on('exit', (code) => { stack.exited = code ?? 'signal'; });
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!readFileSync(logPath, 'utf8').includes(READY)) {
    if (stack.exited !== null || Date.now() > deadline) {
      throw new Error(`local stack did not start; last lines of ${logPath}:\n${tail(logPath)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  stack.state = JSON.parse(readFileSync(join(dataDir, 'devstack.json'), 'utf8'));
  return stack;
}

function tail(path, lines = 40) {
  return existsSync(path) ? readFileSync(path, 'utf8').split('\n').slice(-lines).join('\n') : '';
}

// SIGTERM to devstack only (its own process group leader, spawned by us): it stops the store, moto and chalice.
async function stopStack(stack) {
  if (!stack || stack.exited !== null) return;
  stack.child.kill('SIGTERM');
  const deadline = Date.now() + 30_000;
  while (stack.exited === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  if (stack.exited === null) process.kill(-stack.child.pid, 'SIGKILL');
}

function runJourney(stack, cert) {
  const base = stack.state.graphql.replace(/\/graphql$/, '');
  return new Promise((ok) => {
    const child = spawn(process.execPath, [join(HERE, 'journey.mjs')], {
      stdio: 'inherit',
      env: { ...process.env, GRAPHQL_URL: stack.state.graphql, REALTIME_URL: stack.state.realtime,
        BUS_URL: `${base}/local/events`,
        // Trust exactly the certificate made above; TLS verification stays on.
        NODE_EXTRA_CA_CERTS: cert },
    });
    child.on('exit', (code) => ok(code ?? 1));
  });
}

let stack;
let code = 1;
const interrupted = () => { stopStack(stack).finally(() => process.exit(130)); };
process.on('SIGINT', interrupted);
process.on('SIGTERM', interrupted);
try {
  const tls = makeCertificate();
  say(`self-signed certificate for 127.0.0.1: ${tls.cert}`);
  const started = Date.now();
  stack = await startStack(tls);
  say(`local stack up in ${((Date.now() - started) / 1000).toFixed(1)}s: GraphQL ${stack.state.graphql}, `
    + `real-time ${stack.state.realtime}`);
  if (!String(stack.state.realtime).startsWith('wss://')) throw new Error('real-time endpoint is not wss://');
  code = await runJourney(stack, tls.cert);
  if (code !== 0) say(`stack log kept for a look: ${stack.logPath}`);
} catch (error) {
  console.error(`[amplify-journey] ${error.message}`);
  code = 1;
} finally {
  await stopStack(stack);
  if (code === 0) rmSync(work, { recursive: true, force: true });
}
process.exit(code);
