// Syntax rules for names, labels, ports and addresses, ported from
// k8s.io/apimachinery/pkg/util/validation. Each returns the list of messages
// Kubernetes would give (empty when valid), so callers decide the field path.

import { isIPv4, isIPv6 } from 'node:net'

export function regexError(msg: string, fmt: string, ...examples: string[]): string {
  if (examples.length === 0) return `${msg} (regex used for validation is '${fmt}')`
  const eg = examples.map((e) => `'${e}', `).join(' or ')
  return `${msg} (e.g. ${eg}regex used for validation is '${fmt}')`
}

export function maxLenError(n: number): string {
  return `must be no more than ${n} characters`
}

const dns1123LabelFmt = '[a-z0-9]([-a-z0-9]*[a-z0-9])?'
const dns1123SubdomainFmt = `${dns1123LabelFmt}(\\.${dns1123LabelFmt})*`
const dns1035LabelFmt = '[a-z]([-a-z0-9]*[a-z0-9])?'
const qualifiedNameFmt = '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]'
const labelValueFmt = `(${qualifiedNameFmt})?`
const wildcardFmt = `\\*\\.${dns1123SubdomainFmt}`
const configMapKeyFmt = '[-._a-zA-Z0-9]+'
const percentFmt = '[0-9]+%'

const full = (fmt: string) => new RegExp(`^${fmt}$`)
const dns1123LabelRe = full(dns1123LabelFmt)
const dns1123SubdomainRe = full(dns1123SubdomainFmt)
const dns1035LabelRe = full(dns1035LabelFmt)
const qualifiedNameRe = full(qualifiedNameFmt)
const labelValueRe = full(labelValueFmt)
const wildcardRe = full(wildcardFmt)
const configMapKeyRe = full(configMapKeyFmt)
const percentRe = full(percentFmt)

export function isDNS1123Label(v: string): string[] {
  const errs: string[] = []
  if (v.length > 63) errs.push(maxLenError(63))
  if (!dns1123LabelRe.test(v)) {
    // A valid subdomain that is not a label can only be wrong by its dots.
    if (dns1123SubdomainRe.test(v)) errs.push('must not contain dots')
    else
      errs.push(
        regexError(
          "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
          dns1123LabelFmt,
          'my-name',
          '123-abc',
        ),
      )
  }
  return errs
}

export function isDNS1123Subdomain(v: string): string[] {
  const errs: string[] = []
  if (v.length > 253) errs.push(maxLenError(253))
  if (!dns1123SubdomainRe.test(v))
    errs.push(
      regexError(
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        dns1123SubdomainFmt,
        'example.com',
      ),
    )
  return errs
}

export function isDNS1035Label(v: string): string[] {
  const errs: string[] = []
  if (v.length > 63) errs.push(maxLenError(63))
  if (!dns1035LabelRe.test(v))
    errs.push(
      regexError(
        "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
        dns1035LabelFmt,
        'my-name',
        'abc-123',
      ),
    )
  return errs
}

export function isWildcardDNS1123Subdomain(v: string): string[] {
  const errs: string[] = []
  if (v.length > 253) errs.push(maxLenError(253))
  if (!wildcardRe.test(v))
    errs.push(
      regexError(
        "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character",
        wildcardFmt,
        '*.example.com',
      ),
    )
  return errs
}

const qualifiedNameMsg = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"

/** Label and annotation keys: an optional DNS subdomain prefix, '/', and a name of at most 63 characters. */
export function isQualifiedName(v: string): string[] {
  const parts = v.split('/')
  let name = parts[0]
  const errs: string[] = []
  if (parts.length === 2) {
    const prefix = parts[0]
    name = parts[1]
    if (prefix.length === 0) errs.push('prefix part must be non-empty')
    else errs.push(...isDNS1123Subdomain(prefix).map((m) => `prefix part ${m}`))
  } else if (parts.length > 2) {
    return [
      `a qualified name ${regexError(qualifiedNameMsg, qualifiedNameFmt, 'MyName', 'my.name', '123-abc')} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`,
    ]
  }
  if (name.length === 0) errs.push('name part must be non-empty')
  else if (name.length > 63) errs.push(`name part ${maxLenError(63)}`)
  if (!qualifiedNameRe.test(name)) errs.push(`name part ${regexError(qualifiedNameMsg, qualifiedNameFmt, 'MyName', 'my.name', '123-abc')}`)
  return errs
}

export function isValidLabelValue(v: string): string[] {
  const errs: string[] = []
  if (v.length > 63) errs.push(maxLenError(63))
  if (!labelValueRe.test(v))
    errs.push(
      regexError(
        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
        labelValueFmt,
        'MyValue',
        'my_value',
        '12345',
      ),
    )
  return errs
}

/**
 * A host name per RFC 1123 (2.1) as DNS carries it: a lowercase DNS-1123
 * subdomain whose labels are at most 63 characters each (Kubernetes only
 * bounds the whole name, but DNS cannot encode a longer label).
 */
export function isRFC1123Hostname(v: string): string[] {
  const errs = isDNS1123Subdomain(v)
  if (v.split('.').some((l) => l.length > 63)) errs.push(`each label ${maxLenError(63)}`)
  return errs
}

/** An Ingress host: an RFC 1123 host name, or `*.` (one leftmost label, nothing else) followed by one. */
export function isIngressHost(v: string): string[] {
  const errs = v.includes('*') ? isWildcardDNS1123Subdomain(v) : isDNS1123Subdomain(v)
  if (v.split('.').some((l) => l.length > 63)) errs.push(`each label ${maxLenError(63)}`)
  return errs
}

const pchar = "[A-Za-z0-9\\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2}"
const httpPathFmt = `(/(${pchar})*)+`
const httpPathRe = full(httpPathFmt)

/**
 * An absolute path as RFC 3986 (3.3) writes one: `/` segments of unreserved
 * characters, sub-delims, ':' '@' and well-formed %XX escapes; no query,
 * fragment, space, backslash, control or raw non-ASCII character. Encoded
 * '/', '\\' and NUL are refused too: the ingress answers 400 to a request
 * carrying one (dataplane/ingress/paths.ts), so no route could match it.
 */
export function isHTTPPath(v: string): string[] {
  if (!httpPathRe.test(v))
    return [regexError("must be an absolute path of RFC 3986 path characters (letters, digits, '-._~!$&'()*+,;=:@', '/' and %XX escapes)", httpPathFmt, '/', '/api/v1', '/caf%C3%A9')]
  const errs: string[] = []
  if (/%2f/i.test(v)) errs.push(encodedSlashMsg)
  if (/%5c/i.test(v)) errs.push("must not contain an encoded '\\' (%5C)")
  if (v.includes('%00')) errs.push('must not contain an encoded NUL (%00)')
  return errs
}

export const encodedSlashMsg = "must not contain an encoded '/' (%2F)"

/** C0 and C1 controls and DEL. */
export const control = /[\x00-\x1f\x7f-\x9f]/
export const controlCharacterMsg = 'must not contain control characters'

/** IANA_SVC_NAME: the names container ports and named targetPorts use. */
export function isValidPortName(v: string): string[] {
  const errs: string[] = []
  if (v.length > 15) errs.push(maxLenError(15))
  if (!/^[-a-z0-9]+$/.test(v)) errs.push('must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)')
  if (!/[a-z]/.test(v)) errs.push('must contain at least one letter (a-z)')
  if (v.includes('--')) errs.push('must not contain consecutive hyphens')
  if (v.startsWith('-') || v.endsWith('-')) errs.push('must not begin or end with a hyphen')
  return errs
}

export function isValidPortNum(v: unknown): string[] {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535 ? [] : ['must be between 1 and 65535, inclusive']
}

export function isConfigMapKey(v: string): string[] {
  const errs: string[] = []
  if (v.length > 253) errs.push(maxLenError(253))
  if (!configMapKeyRe.test(v))
    errs.push(regexError("a valid config key must consist of alphanumeric characters, '-', '_' or '.'", configMapKeyFmt, 'key.name', 'KEY_NAME', 'key-name'))
  if (v === '.') errs.push("must not be '.'")
  else if (v === '..') errs.push("must not be '..'")
  else if (v.startsWith('..')) errs.push("must not start with '..'")
  return errs
}

/** Kubernetes 1.32 enables RelaxedEnvironmentVariableValidation: any printable ASCII but '='. */
export function isEnvVarName(v: string): string[] {
  return /^[\x20-\x3c\x3e-\x7e]+$/.test(v) ? [] : ["a valid environment variable name must consist only of printable ASCII characters other than '='"]
}

export function isValidPercent(v: string): string[] {
  return percentRe.test(v) ? [] : [regexError("a valid percent string must be a numeric string followed by an ending '%'", percentFmt, '1%', '93%')]
}

export function isValidIP(v: string): string[] {
  return isIPv4(v) || isIPv6(v) ? [] : ['must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)']
}

export function isValidIPv4(v: string): string[] {
  return isIPv4(v) ? [] : ['must be a valid IPv4 address']
}

export function isValidIPv6(v: string): string[] {
  return isIPv6(v) ? [] : ['must be a valid IPv6 address']
}

/** `10.0.0.0/8` or `fd00::/64`; host bits may be set, as Go's ParseCIDR allows. */
export function parseCIDR(v: string): { family: 4 | 6; address: string; prefix: number } | undefined {
  // No IPv6 zone (`fe80::1%eth0/64`), which Go's ParseCIDR refuses and node:net accepts.
  const m = /^([0-9A-Fa-f:.]+)\/(\d{1,3})$/.exec(v)
  if (!m) return undefined
  const prefix = Number(m[2])
  if (isIPv4(m[1]) && prefix <= 32) return { family: 4, address: m[1], prefix }
  if (isIPv6(m[1]) && prefix <= 128) return { family: 6, address: m[1], prefix }
  return undefined
}

export function isValidCIDR(v: string): string[] {
  return parseCIDR(v) ? [] : ['must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)']
}

export function isFullyQualifiedDomainName(v: string): string[] {
  const name = v.endsWith('.') ? v.slice(0, -1) : v
  if (name.length === 0) return ['Required value']
  const errs = isDNS1123Subdomain(name)
  if (!name.includes('.')) errs.push('should be a domain with at least two segments separated by dots')
  return errs
}

/** generateName is validated as a prefix: one trailing '-' is allowed. */
export function maskTrailingDash(v: string): string {
  return v.length > 1 && v.endsWith('-') ? v.slice(0, -1) : v
}
