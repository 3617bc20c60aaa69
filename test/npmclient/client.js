'use strict';
// An independent ServiceNow client against `steward snow-emulator`: the
// servicenow-rest-api npm package (pinned to 1.2.2 in package.json), written
// by people who never saw our emulator, authenticates, creates an incident
// with display values, reads it back by number, updates it and deletes it.
// Every step's answer is checked; any mismatch exits 1 with a message.
//
// Environment:
//   SNOW_URL       https://127.0.0.1:PORT (the package only speaks https)
//   SNOW_USER      e.g. admin
//   SNOW_PASSWORD  e.g. admin
//   NODE_EXTRA_CA_CERTS  the PEM written by snow-emulator --tls-cert-out;
//                        certificate verification stays on.
//
// How the package is pointed at the emulator: it builds
// https://<instance>.service-now.com URLs, except when the instance name
// contains a dot, which it then uses as the host verbatim. So the instance
// name is "127.0.0.1:PORT". No file of the package is patched.

const assert = require('node:assert/strict');
const path = require('node:path');

const ServiceNow = require('servicenow-rest-api');
const pkg = require('servicenow-rest-api/package.json');
// The package's own axios module: interceptors on it see every request the
// package sends, including Authenticate's, which returns nothing.
const axios = require(require.resolve('axios', { paths: [path.dirname(require.resolve('servicenow-rest-api'))] }));

const STEP_TIMEOUT_MS = 15000;

function env(name) {
  const v = process.env[name];
  if (!v) fail('setup', `environment variable ${name} is not set`);
  return v;
}

function fail(step, msg) {
  console.error(`npm client: step "${step}" failed: ${msg}`);
  process.exit(1);
}

// describe renders an axios error (or anything thrown) on one line.
function describe(err) {
  if (err && err.response) {
    const c = err.config || {};
    return `${String(c.method).toUpperCase()} ${c.url} answered ${err.response.status}: ${JSON.stringify(err.response.data)}`;
  }
  if (err && err.code && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(err.code)) {
    return `${err.code}: ${err.message} (is NODE_EXTRA_CA_CERTS the PEM written by --tls-cert-out?)`;
  }
  return err && err.stack ? err.stack : String(err);
}

// exchanges records every request/response the package makes.
const exchanges = [];
const waiters = [];
function record(entry) {
  exchanges.push(entry);
  console.log(`  ${entry.method} ${entry.url} -> ${entry.status}`);
  for (const w of waiters.splice(0)) {
    if (w.match(entry)) w.resolve(entry);
    else waiters.push(w);
  }
}
function nextExchange(match) {
  return new Promise((resolve) => waiters.push({ match, resolve }));
}

axios.defaults.proxy = false; // the emulator is on loopback; never via a proxy
axios.defaults.timeout = STEP_TIMEOUT_MS;
axios.interceptors.response.use(
  (res) => {
    record({ method: res.config.method.toUpperCase(), url: res.config.url, status: res.status, data: res.data });
    return res;
  },
  (err) => {
    const c = err.config || {};
    record({ method: String(c.method).toUpperCase(), url: c.url, status: err.response ? err.response.status : err.code, data: err.response && err.response.data, error: err });
    return Promise.reject(err);
  },
);

// step runs fn(callback) with a deadline and turns the package's
// callback-with-result-or-Error convention into a checked value.
async function step(name, fn) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${STEP_TIMEOUT_MS} ms`)), STEP_TIMEOUT_MS);
  });
  try {
    const res = await Promise.race([new Promise((resolve) => fn(resolve)), deadline]);
    if (res instanceof Error) fail(name, describe(res));
    return res;
  } catch (err) {
    fail(name, describe(err));
  } finally {
    clearTimeout(timer);
  }
}

function check(name, fn) {
  try {
    fn();
  } catch (err) {
    fail(name, err.message);
  }
}

function lastExchange(method, pathPart) {
  for (let i = exchanges.length - 1; i >= 0; i--) {
    const e = exchanges[i];
    if (e.method === method && e.url.includes(pathPart)) return e;
  }
  return undefined;
}

async function main() {
  const base = new URL(env('SNOW_URL'));
  const user = env('SNOW_USER');
  const password = env('SNOW_PASSWORD');
  if (base.protocol !== 'https:') fail('setup', `SNOW_URL ${base} is not https: servicenow-rest-api only builds https URLs`);
  if (!base.host.includes('.')) fail('setup', `SNOW_URL host ${base.host} has no dot: the package would turn it into ${base.host}.service-now.com; use 127.0.0.1`);
  check('setup', () => assert.equal(pkg.version, '1.2.2', 'servicenow-rest-api version'));
  const origin = base.origin;
  console.log(`servicenow-rest-api ${pkg.version} against ${origin} as ${user}`);

  const sn = new ServiceNow(base.host, user, password);

  // 1. Authenticate: GET /api/now/v2/table/sys_user?user_name=USER with
  // Basic auth. It returns nothing, so its answer is read off the wire.
  const authSeen = nextExchange((e) => e.url.includes('/table/sys_user?user_name='));
  sn.Authenticate();
  const auth = await step('authenticate', (done) => authSeen.then(done));
  if (auth.error && !auth.error.response) fail('authenticate', describe(auth.error));
  check('authenticate', () => {
    assert.equal(auth.status, 200, `sys_user lookup answered ${auth.status}: ${JSON.stringify(auth.data)}`);
    assert.ok(Array.isArray(auth.data.result), 'result is a list');
    assert.equal(auth.data.result.length, 1, 'exactly one sys_user row');
    assert.equal(auth.data.result[0].user_name, user, 'user_name');
  });

  // 2. Create with display values: the package posts with
  // sysparm_input_display_value=true&sysparm_display_value=true, so
  // references and choices go in, and come back, as labels.
  const shortDescription = `npm client check ${Date.now()}`;
  const created = await step('create', (done) => sn.createNewTask({
    short_description: shortDescription,
    caller_id: 'Fred Luddy',
    assignment_group: 'Service Desk',
    impact: '2 - Medium',
    urgency: '2 - Medium',
    state: 'In Progress',
    correlation_id: `npmclient-${process.pid}-${Date.now()}`,
  }, 'incident', done));
  check('create', () => {
    const post = lastExchange('POST', '/api/now/table/incident');
    assert.ok(post, 'the package sent a POST');
    assert.equal(post.status, 201, 'POST status');
    assert.match(created.number, /^INC\d{7}$/, 'number');
    assert.match(created.sys_id, /^[0-9a-f]{32}$/, 'sys_id');
    assert.equal(created.short_description, shortDescription, 'short_description');
    assert.equal(created.state, 'In Progress', 'state as a label');
    assert.equal(created.impact, '2 - Medium', 'impact as a label');
    assert.equal(created.urgency, '2 - Medium', 'urgency as a label');
    assert.equal(created.priority, '3 - Moderate', 'priority computed from impact x urgency');
    assert.equal(created.caller_id.display_value, 'Fred Luddy', 'caller_id resolved from its display value');
    assert.match(created.caller_id.link, new RegExp(`^${origin}/api/now/table/sys_user/[0-9a-f]{32}$`), 'caller_id link');
    assert.equal(created.assignment_group.display_value, 'Service Desk', 'assignment_group resolved from its display value');
    assert.equal(created.assigned_to, '', 'an empty reference renders as ""');
    assert.equal(created.sys_mod_count, '0', 'sys_mod_count');
  });
  const number = created.number;
  console.log(`  created ${number} (${created.sys_id})`);

  // 3. Read back by number: GET /api/now/v2/table/incident with
  // sysparm_display_value=true, sysparm_fields and sysparm_query.
  const fields = ['number', 'sys_id', 'short_description', 'state', 'priority', 'caller_id', 'assignment_group'];
  const read = await step('read', (done) => sn.getTableData(fields, [`number=${number}`], 'incident', done));
  check('read', () => {
    assert.ok(Array.isArray(read), 'result is a list');
    assert.equal(read.length, 1, `one incident numbered ${number}`);
    const r = read[0];
    assert.deepEqual(Object.keys(r).sort(), [...fields].sort(), 'only the sysparm_fields come back');
    assert.equal(r.sys_id, created.sys_id, 'sys_id');
    assert.equal(r.short_description, shortDescription, 'short_description');
    assert.equal(r.state, 'In Progress', 'state');
    assert.equal(r.priority, '3 - Moderate', 'priority');
    assert.equal(r.caller_id.display_value, 'Fred Luddy', 'caller_id');
    assert.match(r.caller_id.link, new RegExp(`^${origin}/api/now/v2/table/sys_user/[0-9a-f]{32}$`), 'a v2 request gets v2 links');
    assert.equal(r.assignment_group.display_value, 'Service Desk', 'assignment_group');
  });

  // 4. Update: getSysId (GET ...?sysparm_query=number=N&sysparm_fields=sys_id)
  // then PUT /api/now/table/incident/{sys_id} with display values.
  const updated = await step('update', (done) => sn.UpdateTask('incident', number, {
    short_description: `${shortDescription} (updated)`,
    impact: '1 - High',
    urgency: '1 - High',
    assigned_to: 'Beth Anglin',
    work_notes: 'Updated by the servicenow-rest-api npm package',
  }, done));
  check('update', () => {
    const put = lastExchange('PUT', `/api/now/table/incident/${created.sys_id}`);
    assert.ok(put, `the package sent a PUT to the sys_id ${created.sys_id}`);
    assert.equal(put.status, 200, 'PUT status');
    assert.equal(updated.sys_id, created.sys_id, 'same record');
    assert.equal(updated.short_description, `${shortDescription} (updated)`, 'short_description');
    assert.equal(updated.urgency, '1 - High', 'urgency');
    assert.equal(updated.priority, '1 - Critical', 'priority recomputed');
    assert.equal(updated.assigned_to.display_value, 'Beth Anglin', 'assigned_to resolved from its display value');
    assert.equal(updated.sys_mod_count, '1', 'sys_mod_count');
    assert.equal(updated.sys_updated_by, user, 'sys_updated_by');
  });
  const reread = await step('update', (done) => sn.getTableData(['assigned_to', 'priority'], [`number=${number}`], 'incident', done));
  check('update', () => {
    assert.equal(reread.length, 1, 'still one record');
    assert.equal(reread[0].priority, '1 - Critical', 'the update persisted');
    assert.equal(reread[0].assigned_to.display_value, 'Beth Anglin', 'the assignee persisted');
  });

  // 5. Delete: getSysId then DELETE /api/now/table/incident/{sys_id}.
  const deleted = await step('delete', (done) => sn.DeleteTask('incident', number, done));
  check('delete', () => assert.equal(deleted.status, 204, 'DELETE status'));
  const gone = await step('delete', (done) => sn.getTableData(['number'], [`number=${number}`], 'incident', done));
  check('delete', () => assert.deepEqual(gone, [], `${number} is gone`));

  console.log(`npm client: ok: authenticate, create, read, update, delete against ${origin}`);
}

main().catch((err) => fail('main', describe(err)));
