import { TestkitError } from './errors.js'

export interface EdgeVclOptions {
  backend: { host: string; port: number }
  /** ACL entries allowed to send PURGE and BAN (`"127.0.0.1"`, `"10.0.0.0/8"`, `"::1"`). */
  purgeAllowedFrom: string[]
}

function aclEntry(entry: string): string {
  const [address, bits] = entry.split('/')
  if (!address || !/^[0-9a-fA-F:.]+$/.test(address) || (bits !== undefined && !/^\d+$/.test(bits))) {
    throw new TestkitError('E_TESTKIT_OPTIONS', `purgeAllowedFrom: not an ACL entry: ${entry}`)
  }
  return bits === undefined ? `"${address}";` : `"${address}"/${bits};`
}

/**
 * The edge's VCL: a small CDN in front of one origin.
 *
 * - TTL from the origin (`s-maxage` > `max-age` > `Expires`, Varnish's own rules); `no-cache`,
 *   `no-store`, `private` and `Set-Cookie` are not cached (the builtin VCL runs after ours).
 * - Grace = max(`stale-while-revalidate`, `stale-if-error`). Within the SWR window a stale object
 *   is served while a background fetch refreshes it. Past it, the request restarts with
 *   `req.grace = 0s` so the fetch is synchronous; only if that fetch fails (refused, 5xx) does a
 *   second restart serve the stale copy: that is `stale-if-error`, which Varnish has no knob for.
 * - `PURGE <url>` drops one URL (all its variants); `BAN` with `Surrogate-Key: a b` bans every
 *   object whose `Surrogate-Key` holds one of the keys (lurker-friendly: it reads only `obj.*`).
 *   Both only from the ACL.
 * - `X-Cache: HIT|MISS` on every response (`X-Cache-Stale: 1` when a stale copy was served).
 */
export function edgeVcl({ backend, purgeAllowedFrom }: EdgeVclOptions): string {
  if (!/^[\w.:-]+$/.test(backend.host))
    throw new TestkitError('E_TESTKIT_OPTIONS', `backend.host: not a host name or address: ${backend.host}`)
  return `vcl 4.1;
import std;

backend origin {
  .host = "${backend.host}";
  .port = "${Number(backend.port)}";
  .connect_timeout = 1s;
  .first_byte_timeout = 10s;
  .between_bytes_timeout = 10s;
}

acl purgers {
  ${purgeAllowedFrom.map(aclEntry).join('\n  ')}
}

sub vcl_recv {
  if (req.restarts == 0) {
    # Our own flags: a client must not be able to set them.
    unset req.http.X-Scale-Fresh;
    unset req.http.X-Scale-Stale;
    unset req.http.X-Scale-Cache;
    unset req.http.X-Scale-Served-Stale;
  }
  if (req.url == "/__scale_varnish_ready") {
    return (synth(200, "ready"));
  }
  if (req.method == "PURGE") {
    if (client.ip !~ purgers) {
      return (synth(403, "PURGE not allowed from " + client.ip));
    }
    return (purge);
  }
  if (req.method == "BAN") {
    if (client.ip !~ purgers) {
      return (synth(403, "BAN not allowed from " + client.ip));
    }
    if (!req.http.Surrogate-Key) {
      return (synth(400, "BAN needs a Surrogate-Key header"));
    }
    if (req.http.Surrogate-Key !~ "^ *[A-Za-z0-9_.:/-]+( +[A-Za-z0-9_.:/-]+)* *$") {
      return (synth(400, "Surrogate-Key: space-separated keys of A-Z a-z 0-9 _ . : / -"));
    }
    # "a b.c" -> (^|[[:space:]])(a|b[.]c)($|[[:space:]]): whole keys only. Neither quotes nor a
    # literal space: the ban expression parser splits on spaces and keeps quotes as they are.
    if (!std.ban("obj.http.Surrogate-Key ~ (^|[[:space:]])(" +
      regsuball(regsuball(regsub(req.http.Surrogate-Key, "^ *(.*?) *$", "\\1"), "[.]", "[.]"), " +", "|") +
      ")($|[[:space:]])")) {
      return (synth(400, std.ban_error()));
    }
    return (synth(200, "Banned"));
  }
  if (req.http.X-Scale-Fresh) {
    # Past stale-while-revalidate: a stale object must not be served without trying the origin.
    set req.grace = 0s;
  } else if (req.http.X-Scale-Stale) {
    # req.grace survives a restart: lift the limit again, the object's own grace applies.
    set req.grace = 3650d;
  }
}

sub vcl_hit {
  set req.http.X-Scale-Cache = "HIT";
  if (obj.ttl >= 0s) {
    return (deliver);
  }
  set req.http.X-Scale-Served-Stale = "1";
  if (obj.ttl + std.duration(obj.http.X-Scale-Swr + "s", 0s) > 0s) {
    return (deliver); # stale-while-revalidate: serve it, refresh in the background
  }
  if (req.http.X-Scale-Stale) {
    return (deliver); # stale-if-error: the synchronous fetch failed
  }
  unset req.http.X-Scale-Served-Stale;
  set req.http.X-Scale-Fresh = "1";
  return (restart);
}

sub vcl_miss {
  set req.http.X-Scale-Cache = "MISS";
}

sub vcl_pass {
  set req.http.X-Scale-Cache = "MISS";
}

sub vcl_backend_response {
  if (beresp.status >= 500 && (bereq.is_bgfetch || bereq.http.X-Scale-Fresh)) {
    return (abandon); # keep the stale copy for stale-if-error
  }
  set beresp.http.X-Scale-Swr = "0";
  if (beresp.http.Cache-Control ~ "(?i)stale-while-revalidate=[0-9]+") {
    set beresp.http.X-Scale-Swr = regsub(beresp.http.Cache-Control, "(?i)^.*stale-while-revalidate=([0-9]+).*$", "\\1");
  }
  set beresp.grace = std.duration(beresp.http.X-Scale-Swr + "s", 0s);
  if (beresp.http.Cache-Control ~ "(?i)stale-if-error=[0-9]+") {
    if (std.duration(regsub(beresp.http.Cache-Control, "(?i)^.*stale-if-error=([0-9]+).*$", "\\1s"), 0s) > beresp.grace) {
      set beresp.grace = std.duration(regsub(beresp.http.Cache-Control, "(?i)^.*stale-if-error=([0-9]+).*$", "\\1s"), 0s);
    }
  }
}

sub vcl_backend_error {
  if (bereq.is_bgfetch || bereq.http.X-Scale-Fresh) {
    return (abandon);
  }
}

sub vcl_synth {
  if (resp.status == 503 && req.http.X-Scale-Fresh && !req.http.X-Scale-Stale) {
    unset req.http.X-Scale-Fresh;
    set req.http.X-Scale-Stale = "1";
    return (restart);
  }
  set resp.http.X-Cache = "MISS";
  set resp.http.Content-Type = "text/plain; charset=utf-8";
  set resp.body = resp.reason + {"
"};
  return (deliver); # a short plain-text body instead of the builtin HTML page
}

sub vcl_deliver {
  if (resp.status == 503 && req.http.X-Scale-Fresh && !req.http.X-Scale-Stale) {
    unset req.http.X-Scale-Fresh;
    set req.http.X-Scale-Stale = "1";
    return (restart);
  }
  set resp.http.X-Cache = req.http.X-Scale-Cache;
  if (req.http.X-Scale-Served-Stale) {
    set resp.http.X-Cache-Stale = "1";
  }
  unset resp.http.X-Scale-Swr;
  # Like Fastly and Cloudflare: the purge keys are for the edge, not for the browser.
  unset resp.http.Surrogate-Key;
}
`
}
