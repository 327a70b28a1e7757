// Pulumi Cloud login without a stored token: the job's OIDC id_token exchanged for a short-lived
// organisation token through Pulumi Cloud's OAuth token exchange (POST /api/oauth/token, RFC 8693, as
// Pulumi's REST API documentation describes it). The organisation must trust GitLab as an OIDC issuer.

export interface TokenExchange {
    /** The Pulumi Cloud organisation. */
    org: string;
    /** The job's id_token whose audience is urn:pulumi:org:<org>. */
    idToken: string;
    /** @default https://api.pulumi.com */
    apiUrl?: string;
    /** Seconds the token lives. @default 7200, a long deploy's length */
    expiresIn?: number;
}

export async function pulumiAccessToken(exchange: TokenExchange): Promise<string> {
    const url = `${exchange.apiUrl ?? "https://api.pulumi.com"}/api/oauth/token`;
    const response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify({
            audience: `urn:pulumi:org:${exchange.org}`,
            grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
            subject_token_type: "urn:ietf:params:oauth:token-type:id_token",
            requested_token_type: "urn:pulumi:token-type:access_token:organization",
            subject_token: exchange.idToken,
            expiration: exchange.expiresIn ?? 7200,
        }),
    });
    const text = await response.text();
    // Never echo the body on success (it holds the token); on failure it is Pulumi Cloud's reason.
    if (!response.ok) throw new Error(`Pulumi Cloud refused the OIDC token exchange for ${exchange.org} (${response.status}): ${text.slice(0, 300)}`);
    const token = (JSON.parse(text) as { access_token?: unknown }).access_token;
    if (typeof token !== "string" || !token) throw new Error(`Pulumi Cloud answered the token exchange for ${exchange.org} without an access_token`);
    return token;
}
