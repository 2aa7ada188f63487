import { normalizeBases } from './cdn-options.js'

/**
 * A tiny inline script (a few hundred bytes, no dependencies) that retries a failed asset from the
 * next host: when an `<img>`, `<script>` or `<link>` whose URL starts with `hosts[i]` fails to
 * load, it is loaded again from `hosts[i + 1]` (same path and query). Put it in `<head>` before
 * the assets it guards. A retried `<script>` is a new element, so it runs async: keep scripts that
 * depend on each other's order in one bundle.
 *
 * Signed URLs are signed for their host's path; use it with unsigned (fingerprinted) assets.
 *
 * @example
 * ```ts
 * const html = `<script>${fallbackScript([cdn.baseUrls[0], 'https://www.example.com'])}</script>`
 * ```
 */
export function fallbackScript(hosts: readonly string[]): string {
  const list = JSON.stringify(normalizeBases(hosts, 'hosts')).replace(/</g, '\\u003c')
  // Resource errors do not bubble, but a capturing listener on window sees them.
  return (
    '(function(h){addEventListener("error",function(e){' +
    'var t=e.target,g=t.tagName,a=g=="LINK"?"href":"src",u=t[a],i,j,n;' +
    'if(!u||!/^(IMG|SCRIPT|LINK)$/.test(g))return;' +
    'for(i=0;i<h.length-1;i++)if(u.indexOf(h[i]+"/")==0){u=h[i+1]+u.slice(h[i].length);' +
    'if(g=="IMG")t.src=u;else{n=document.createElement(g);' +
    // A cloned <script> keeps its "already started" flag and would never run: build a new one.
    'for(j=0;j<t.attributes.length;j++)n.setAttribute(t.attributes[j].name,t.attributes[j].value);' +
    'n[a]=u;t.parentNode.insertBefore(n,t.nextSibling);t.remove()}return}},true)})(' +
    list +
    ')'
  )
}
