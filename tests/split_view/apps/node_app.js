// Split-view upstream: Node's http module with a small router that matches the path
// the way an Express app sees its parameters: decodeURIComponent of the pathname,
// case-insensitive, a trailing slash ignored (Express's defaults). A guarded handler
// for /api/v1/admin/users (and below) and an unguarded catch-all; each answers which
// handler ran, the decoded path, and the identity headers as req.headers exposes them.
'use strict';
const http = require('http');

function answer(res, handler, path, req) {
  const lines = [`handler=${handler}`, 'stack=node', 'path=' + JSON.stringify(path)];
  if (req.headers['x-user-id'] !== undefined) lines.push('user_id=' + req.headers['x-user-id']);
  if (req.headers['x-scopes'] !== undefined) lines.push('scopes=' + req.headers['x-scopes']);
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end(lines.join('\n') + '\n');
}

const server = http.createServer((req, res) => {
  let path;
  try {
    path = decodeURIComponent(req.url.split('?')[0]);
  } catch (e) {
    res.writeHead(400, { 'content-type': 'text/plain' });
    res.end('bad uri\n');
    return;
  }
  const p = path.toLowerCase().replace(/\/+$/, '');
  if (p === '/api/v1/admin/users' || p.startsWith('/api/v1/admin/users/')) {
    answer(res, 'guarded', path, req);
  } else {
    answer(res, 'public', path, req);
  }
});
server.listen(Number(process.argv[2]), '127.0.0.1');
