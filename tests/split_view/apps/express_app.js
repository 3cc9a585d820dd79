// Split-view upstream: a real Express 5 app (installed by scripts/test.sh into
// target/split-node), with Express's default routing (case-insensitive, non-strict
// trailing slash). A guarded handler for /api/v1/admin/users (and below) and an
// unguarded catch-all; each answers which handler ran, req.path, and the identity
// headers as req.headers exposes them. Usage: node express_app.js PORT NODE_MODULES_DIR
'use strict';
const path = require('path');
const express = require(path.join(process.argv[3], 'express'));

const app = express();

function answer(handler) {
  return (req, res) => {
    const lines = [`handler=${handler}`, 'stack=express', 'path=' + JSON.stringify(req.path)];
    if (req.headers['x-user-id'] !== undefined) lines.push('user_id=' + req.headers['x-user-id']);
    if (req.headers['x-scopes'] !== undefined) lines.push('scopes=' + req.headers['x-scopes']);
    res.type('text/plain').send(lines.join('\n') + '\n');
  };
}

app.all('/api/v1/admin/users', answer('guarded'));
app.all('/api/v1/admin/users/*rest', answer('guarded'));
app.all('/{*rest}', answer('public'));
// Express's own error answer (a parameter it cannot decode: 400), without the stack trace
app.use((err, req, res, next) => {
  res.status(err.status || 500).type('text/plain').send('error\n');
});
app.listen(Number(process.argv[2]), '127.0.0.1');
