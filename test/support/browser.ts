// A scripted browser for login flows: a cookie jar (by host and path, as browsers keep them; ports are not
// part of a cookie's scope), manual redirects so each hop can be inspected, and the oidc-provider
// devInteractions forms (login, then consent).
export interface Hop {
  url: string;
  status: number;
  location?: string;
  setCookies: string[];
}

interface StoredCookie {
  value: string;
  path: string;
  attributes: string;
}

export class ScriptedBrowser {
  /** host → cookie name → cookie. */
  readonly jar = new Map<string, Map<string, StoredCookie>>();

  cookieHeader(url: string): string | undefined {
    const u = new URL(url);
    const cookies = [...(this.jar.get(u.hostname)?.entries() ?? [])].filter(([, c]) => u.pathname.startsWith(c.path));
    return cookies.length ? cookies.map(([n, c]) => `${n}=${c.value}`).join('; ') : undefined;
  }

  cookie(host: string, name: string): StoredCookie | undefined {
    return this.jar.get(host)?.get(name);
  }

  store(url: string, setCookies: string[]): void {
    const host = new URL(url).hostname;
    const cookies = this.jar.get(host) ?? new Map<string, StoredCookie>();
    this.jar.set(host, cookies);
    for (const line of setCookies) {
      const [pair, ...attrs] = line.split(';').map((p) => p.trim());
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq);
      const value = pair!.slice(eq + 1);
      const path = attrs.find((a) => a.toLowerCase().startsWith('path='))?.slice(5) ?? '/';
      const maxAge = attrs.find((a) => a.toLowerCase().startsWith('max-age='));
      const expires = attrs.find((a) => a.toLowerCase().startsWith('expires='));
      const gone = (maxAge && Number(maxAge.slice(8)) <= 0) || (expires && Date.parse(expires.slice(8)) < Date.now()) || value === '';
      if (gone) cookies.delete(name);
      else cookies.set(name, { value, path, attributes: attrs.join('; ') });
    }
  }

  async request(url: string, init: RequestInit = {}): Promise<{ response: Response; hop: Hop }> {
    const headers = new Headers(init.headers);
    const cookie = this.cookieHeader(url);
    if (cookie) headers.set('cookie', cookie);
    if (!headers.has('accept')) headers.set('accept', 'text/html,application/xhtml+xml');
    const response = await fetch(url, { ...init, headers, redirect: 'manual' });
    const setCookies = response.headers.getSetCookie();
    this.store(url, setCookies);
    const location = response.headers.get('location') ?? undefined;
    return { response, hop: { url, status: response.status, location: location && new URL(location, url).href, setCookies } };
  }

  /** Follows redirects (GET) from `url` until a non-redirect answer or until `stopAt` matches the next URL. */
  async follow(
    url: string,
    opts: { init?: RequestInit; stopAt?: (url: string) => boolean; maxHops?: number } = {},
  ): Promise<{ response: Response; hops: Hop[] }> {
    const hops: Hop[] = [];
    let next = url;
    let init = opts.init;
    for (let i = 0; i < (opts.maxHops ?? 20); i++) {
      const { response, hop } = await this.request(next, init);
      hops.push(hop);
      if (!hop.location || response.status < 300 || response.status >= 400) return { response, hops };
      await response.arrayBuffer();
      next = hop.location;
      init = undefined;
      if (opts.stopAt?.(next)) return { response, hops };
    }
    throw new Error(`too many redirects from ${url}`);
  }

  /**
   * Answers oidc-provider's devInteractions pages from `url` (an /interaction/<uid> page): the login form with
   * `login`, then the consent form; returns the provider's final redirect (to the client's redirect_uri).
   */
  async completeDevInteractions(url: string, login: string, redirectUriPrefix: string): Promise<string> {
    let next = url;
    for (let i = 0; i < 10; i++) {
      if (next.startsWith(redirectUriPrefix)) return next;
      const { response, hops } = await this.follow(next, { stopAt: (u) => u.startsWith(redirectUriPrefix) });
      const last = hops[hops.length - 1]!;
      if (last.location?.startsWith(redirectUriPrefix)) return last.location;
      const html = await response.text();
      const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
      if (!action) throw new Error(`no form at ${last.url} (${response.status}): ${html.slice(0, 500)}`);
      const prompt = /name="prompt" value="([^"]+)"/.exec(html)?.[1] ?? 'login';
      const body = new URLSearchParams(prompt === 'login' ? { prompt, login, password: 'any' } : { prompt });
      const posted = await this.request(new URL(action.replaceAll('&amp;', '&'), last.url).href, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body,
      });
      await posted.response.arrayBuffer();
      if (!posted.hop.location) throw new Error(`form post at ${action} answered ${posted.hop.status}`);
      next = posted.hop.location;
    }
    throw new Error('devInteractions did not finish');
  }
}
