import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeIronFailure, IRON_KIND } from './rdp-errors.js';

test('the endpoint\'s error fields become what the person is told', () => {
  assert.equal(describeIronFailure({ kind: IRON_KIND.WrongPassword }).code, 'RDP_WRONG_PASSWORD');
  assert.equal(describeIronFailure({ kind: IRON_KIND.LogonFailure }).code, 'RDP_WRONG_PASSWORD');
  assert.equal(describeIronFailure({ kind: IRON_KIND.RDCleanPath, wsa: 10061 }).code, 'RDP_PORT_REFUSED');
  assert.equal(describeIronFailure({ kind: IRON_KIND.RDCleanPath, httpStatus: 409 }).code, 'RDP_NO_TARGET');
  assert.equal(describeIronFailure({ kind: IRON_KIND.RDCleanPath, httpStatus: 401 }).code, 'RDP_UNAUTHORIZED');
  assert.equal(describeIronFailure({ kind: IRON_KIND.RDCleanPath, tlsAlert: 40 }).code, 'RDP_TLS_FAILED');
  assert.equal(describeIronFailure({ kind: IRON_KIND.NegotiationFailure, detail: 'HYBRID_REQUIRED_BY_SERVER' }).code, 'RDP_NLA_REQUIRED');
  assert.equal(describeIronFailure({ kind: IRON_KIND.NegotiationFailure, detail: 'SSL_NOT_ALLOWED_BY_SERVER' }).code, 'RDP_NEGOTIATION_FAILED');
  // freerdp-shadow-cli's answer to a wrong password: it closes the connection in CredSSP (seen in the lab).
  assert.equal(describeIronFailure({ kind: IRON_KIND.General, isSigningIn: true, detail: '[read frame by hint] custom error: not enough bytes' }).code, 'RDP_LOGON_FAILED');
  assert.equal(describeIronFailure({ kind: IRON_KIND.General, isSigningIn: false, detail: '[read frame by hint] custom error: not enough bytes' }).code, 'RDP_FAILED');
});
