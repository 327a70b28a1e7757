import { isMap, isScalar, parseDocument } from "yaml";

// A stack file's config as the Pulumi CLI hands it to the program: PULUMI_CONFIG (every key
// `namespace:name`, every value a string, objects as JSON) and PULUMI_CONFIG_SECRET_KEYS. What the CLI does
// on the way, modelled here because the program must be tested on what it really receives:
// - it reads the file with Go's yaml.v3: aliases resolve to their anchors' values, and an unquoted YAML
//   time inside an object becomes a time.Time, which reaches the program as Go's time.String()
//   ("2026-11-24 18:00:00 +0000 UTC");
// - a key without a namespace is in the project's, and the legacy `ns:config:name` is `ns:name`
//   (pulumi sdk/go/common/resource/config/key.go `ParseKey`);
// - a `{secure: <ciphertext>}` value is decrypted and its key listed as secret, also when the secure
//   value sits inside an object (the whole key is then secret).

const PROJECT = "gitops-platform";

function keyOf(raw: string): string {
    if (!raw.includes(":")) return `${PROJECT}:${raw}`;
    const legacy = /^([^:]+):config:(.+)$/.exec(raw);
    return legacy ? `${legacy[1]}:${legacy[2]}` : raw;
}

/** Go's `time.Time.String()` of a UTC time. */
function goTime(d: Date): string {
    const pad = (n: number) => String(n).padStart(2, "0");
    const ms = d.getUTCMilliseconds();
    return (
        `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}` +
        `${ms ? `.${String(ms).padStart(3, "0").replace(/0+$/, "")}` : ""} +0000 UTC`
    );
}

/** The config and secret keys the program gets for a stack file, decrypting with `decrypt`. */
export function handedOver(
    text: string,
    decrypt: (ciphertext: string) => string = (c) => `decrypted(${c})`,
): { config: Record<string, string>; secretKeys: string[] } {
    // YAML 1.1 resolves unquoted times to timestamps, as yaml.v3 does; toJS expands aliases.
    const doc = parseDocument(text, { version: "1.1" });
    const config = doc.get("config", true);
    const out: Record<string, string> = {};
    const secretKeys: string[] = [];
    if (!isMap(config)) return { config: out, secretKeys };
    for (const pair of config.items) {
        const raw = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        const key = keyOf(raw);
        let secret = false;
        const convert = (v: unknown): unknown => {
            if (v instanceof Date) return goTime(v);
            if (Array.isArray(v)) return v.map(convert);
            if (v && typeof v === "object") {
                const o = v as Record<string, unknown>;
                if (Object.keys(o).length === 1 && typeof o["secure"] === "string") {
                    secret = true;
                    return decrypt(o["secure"]);
                }
                return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, convert(x)]));
            }
            return v;
        };
        const node = pair.value;
        const value = convert(node && typeof node === "object" && "toJS" in node ? (node as { toJS(d: unknown): unknown }).toJS(doc) : node);
        // A top-level scalar is the text as written (Pulumi keeps it as a string); anything else, JSON.
        out[key] =
            typeof value === "string"
                ? isScalar(node) && typeof node.source === "string" && !secret
                    ? node.source
                    : value
                : isScalar(node)
                  ? String(node.source ?? value)
                  : JSON.stringify(value);
        if (secret) secretKeys.push(key);
    }
    return { config: out, secretKeys };
}
