//! What is kept of each exchange: level, rules, sampling, redaction.

use std::fmt;
use std::str::FromStr;

use protocols::names::NameFilter;

use crate::values::{Matcher, StatusRange};

/// How much of an exchange is kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CaptureLevel {
    /// Nothing is exported for the exchange.
    None,
    /// Method, URL, status, sizes, timing: no headers, no body.
    Summary,
    /// Summary plus headers (sensitive ones redacted).
    #[default]
    Details,
    /// Details plus bodies up to the body limit.
    Full,
}

impl CaptureLevel {
    /// `none`, `summary`, `details`, `full`.
    pub fn as_str(self) -> &'static str {
        match self {
            CaptureLevel::None => "none",
            CaptureLevel::Summary => "summary",
            CaptureLevel::Details => "details",
            CaptureLevel::Full => "full",
        }
    }
}

impl fmt::Display for CaptureLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not a capture level.
#[derive(Debug, thiserror::Error)]
#[error("unknown capture level {0:?}: expected one of none, summary, details, full")]
pub struct BadCaptureLevel(String);

impl FromStr for CaptureLevel {
    type Err = BadCaptureLevel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Ok(Self::None),
            "summary" => Ok(Self::Summary),
            "details" => Ok(Self::Details),
            "full" => Ok(Self::Full),
            _ => Err(BadCaptureLevel(s.to_string())),
        }
    }
}

/// Header names redacted by default (compared case-insensitively).
pub const DEFAULT_REDACTED_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-auth-token",
    "x-csrf-token",
    "x-xsrf-token",
    "api-key",
];

/// Query parameter names masked by default (compared case-insensitively): the
/// OpenTelemetry semantic conventions' list for `url.full` / `url.query`
/// (`AWSAccessKeyId`, `Signature`, `sig`, `X-Goog-Signature`), the AWS
/// Signature Version 4 presigned-URL credentials (`X-Amz-Signature`,
/// `X-Amz-Credential`, `X-Amz-Security-Token`), plus common credential
/// parameters.
pub const DEFAULT_REDACTED_QUERY_PARAMS: &[&str] = &[
    "AWSAccessKeyId",
    "Signature",
    "sig",
    "X-Goog-Signature",
    "X-Amz-Signature",
    "X-Amz-Credential",
    "X-Amz-Security-Token",
    "access_token",
    "api_key",
    "apikey",
    "password",
    "token",
];

/// The value that replaces a redacted header value.
pub const REDACTED: &str = "[REDACTED]";

/// The value that replaces a masked query parameter value (URL-safe, as the
/// semantic conventions ask).
pub const REDACTED_QUERY_VALUE: &str = "REDACTED";

/// The request and process an exchange is judged by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuleContext<'a> {
    /// Host header (a `:port` suffix is ignored); `None` if absent.
    pub host: Option<&'a str>,
    /// Request target; anything from `?` on is ignored.
    pub path: &'a str,
    /// Request method.
    pub method: &'a str,
    /// Response status, once known: a rule with a `status` condition never matches before.
    pub status: Option<u16>,
    /// Executable path of the process (its file name is tried too).
    pub exe: &'a str,
}

/// One `capture.rules` entry: all conditions given must hold; within a
/// condition, any value may match.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CaptureRule {
    /// Name for logs.
    pub name: Option<String>,
    /// Host matchers (lowercased; compared case-insensitively); empty: any host.
    pub hosts: Vec<Matcher>,
    /// Path matchers; empty: any path.
    pub paths: Vec<Matcher>,
    /// Methods (uppercase); empty: any method.
    pub methods: Vec<String>,
    /// Status ranges; empty: any status.
    pub statuses: Vec<StatusRange>,
    /// Executable matchers (path or file name); empty: any process.
    pub exes: Vec<Matcher>,
    /// Level of matching exchanges; `None`: the capture level.
    pub level: Option<CaptureLevel>,
    /// Share kept of matching exchanges; `None`: the capture sample ratio.
    pub sample_ratio: Option<f64>,
}

// Ratios are checked to be in 0.0..=1.0 (never NaN), so equality is total.
impl Eq for CaptureRule {}

/// `host` without a `:port` suffix (IPv6 literals in brackets kept whole).
fn host_without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return match rest.find(']') {
            Some(i) => &host[..i + 2],
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// The executable's file name.
pub(crate) fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Does an executable matcher match this path (or its file name)?
pub(crate) fn exe_matcher_matches(m: &Matcher, exe_path: &str) -> bool {
    if exe_path.is_empty() {
        return false;
    }
    m.matches(exe_path) || m.matches(file_name(exe_path))
}

impl CaptureRule {
    /// Do all conditions hold for `ctx`?
    pub fn matches(&self, ctx: &RuleContext<'_>) -> bool {
        if !self.hosts.is_empty() {
            let Some(host) = ctx.host else { return false };
            let host = host_without_port(host.trim()).to_ascii_lowercase();
            if !self.hosts.iter().any(|m| m.matches(&host)) {
                return false;
            }
        }
        if !self.paths.is_empty() {
            let path = ctx.path.split(['?', '#']).next().unwrap_or("");
            if !self.paths.iter().any(|m| m.matches(path)) {
                return false;
            }
        }
        if !self.methods.is_empty()
            && !self
                .methods
                .iter()
                .any(|m| m.eq_ignore_ascii_case(ctx.method))
        {
            return false;
        }
        if !self.statuses.is_empty() {
            let Some(status) = ctx.status else {
                return false;
            };
            if !self.statuses.iter().any(|r| r.contains(status)) {
                return false;
            }
        }
        if !self.exes.is_empty() && !self.exes.iter().any(|m| exe_matcher_matches(m, ctx.exe)) {
            return false;
        }
        true
    }
}

/// Header names compared ASCII-case-insensitively, asked about once per
/// captured header field, with the filter that answers most other names
/// without comparing (see [`protocols::names`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderNames {
    names: Vec<String>,
    filter: NameFilter,
}

impl HeaderNames {
    /// Is `name` in the set (ignoring ASCII case)?
    pub fn contains(&self, name: &str) -> bool {
        self.filter.may_contain(name) && self.names.iter().any(|h| h.eq_ignore_ascii_case(name))
    }

    /// The names, as configured.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }
}

impl From<Vec<String>> for HeaderNames {
    fn from(names: Vec<String>) -> Self {
        let filter = names.iter().fold(NameFilter::default(), |f, n| f.with(n));
        HeaderNames { names, filter }
    }
}

/// What to keep of each exchange.
#[derive(Clone, Debug, PartialEq)]
pub struct CaptureSettings {
    /// Level for exchanges no rule matches.
    pub level: CaptureLevel,
    /// Body bytes kept per message at level `full`.
    pub max_body_bytes: usize,
    /// Decode gzip, deflate and br bodies at level `full` (bounded by
    /// `max_body_bytes`; `body_size` stays the size on the wire).
    pub decompress: bool,
    /// Header names (lowercase) whose values are redacted.
    pub redact_headers: HeaderNames,
    /// Share of exchanges no rule matches that are kept, 0.0 to 1.0.
    pub sample_ratio: f64,
    /// Rules, first match wins.
    pub rules: Vec<CaptureRule>,
    /// Query parameter names whose values are masked (compared case-insensitively).
    pub redact_query_params: Vec<String>,
}

// The sample ratio is checked to be in 0.0..=1.0 (never NaN).
impl Eq for CaptureSettings {}

impl Default for CaptureSettings {
    fn default() -> Self {
        Self {
            level: CaptureLevel::default(),
            max_body_bytes: 64 * 1024,
            decompress: false,
            redact_headers: DEFAULT_REDACTED_HEADERS
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .into(),
            sample_ratio: 1.0,
            rules: Vec::new(),
            redact_query_params: DEFAULT_REDACTED_QUERY_PARAMS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

impl CaptureSettings {
    /// Should this header's value be redacted?
    pub fn is_redacted(&self, name: &str) -> bool {
        self.redact_headers.contains(name)
    }

    /// Level and sample ratio for an exchange: those of the first rule that
    /// matches (each defaulting to the capture level and ratio), else the
    /// capture level and ratio.
    pub fn level_for(&self, ctx: &RuleContext<'_>) -> (CaptureLevel, f64) {
        self.matching_rule(ctx)
            .map(|r| {
                (
                    r.level.unwrap_or(self.level),
                    r.sample_ratio.unwrap_or(self.sample_ratio),
                )
            })
            .unwrap_or((self.level, self.sample_ratio))
    }

    /// The first rule that matches `ctx`.
    pub fn matching_rule(&self, ctx: &RuleContext<'_>) -> Option<&CaptureRule> {
        self.rules.iter().find(|r| r.matches(ctx))
    }

    /// Should this query parameter's value be masked?
    pub fn is_query_param_redacted(&self, name: &str) -> bool {
        let decoded = crate::env::percent_decode(&name.replace('+', " "));
        self.redact_query_params
            .iter()
            .any(|p| p.eq_ignore_ascii_case(name) || p.eq_ignore_ascii_case(&decoded))
    }

    /// `query` (with or without its leading `?`) with the values of the
    /// configured parameters replaced by `REDACTED`; everything else, order and
    /// separators included, is kept byte for byte.
    pub fn redact_query(&self, query: &str) -> String {
        let mut out = String::with_capacity(query.len());
        let body = match query.strip_prefix('?') {
            Some(rest) => {
                out.push('?');
                rest
            }
            None => query,
        };
        for (i, pair) in body.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match pair.split_once('=') {
                Some((name, _)) if self.is_query_param_redacted(name) => {
                    out.push_str(name);
                    out.push('=');
                    out.push_str(REDACTED_QUERY_VALUE);
                }
                _ => out.push_str(pair),
            }
        }
        out
    }

    /// A process's command line (its argument strings joined by spaces) with
    /// credentials masked: see [`CaptureSettings::redact_command_args`].
    pub fn redact_command_line<'a>(&self, args: impl IntoIterator<Item = &'a str>) -> String {
        self.redact_command_args(args).join(" ")
    }

    /// A process's argument strings, one for one, with credentials masked:
    /// values of sensitive flags (`--password x`, `--token=x`, `-u user:x`),
    /// header arguments of redacted headers (`-H "Authorization: x"`),
    /// `NAME=x` assignments with a sensitive name, URL passwords
    /// (`https://user:x@host`) and redacted query parameters.
    pub fn redact_command_args<'a>(&self, args: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut mask_next = None;
        for arg in args {
            if let Some(kind) = mask_next.take() {
                out.push(match kind {
                    NextArg::Value => REDACTED.to_string(),
                    NextArg::UserPassword => mask_user_password(arg),
                });
                continue;
            }
            if let Some(flag) = arg.strip_prefix('-').filter(|f| !f.is_empty()) {
                let flag = flag.trim_start_matches('-');
                if let Some((name, _)) = flag.split_once('=') {
                    if is_sensitive_name(name) {
                        let keep = arg.len() - flag.len() + name.len() + 1;
                        out.push(format!("{}{REDACTED}", &arg[..keep]));
                        continue;
                    }
                } else if flag == "u" || flag == "user" || flag == "proxy-user" {
                    mask_next = Some(NextArg::UserPassword);
                } else if is_sensitive_name(flag) {
                    mask_next = Some(NextArg::Value);
                }
                out.push(arg.to_string());
                continue;
            }
            if let Some((name, _)) = arg.split_once(':') {
                if self.is_redacted(name.trim()) {
                    out.push(format!("{name}: {REDACTED}"));
                    continue;
                }
            }
            if let Some((name, _)) = arg.split_once('=') {
                if !name.contains(['/', '?', ' ']) && is_sensitive_name(name) {
                    out.push(format!("{name}={REDACTED}"));
                    continue;
                }
            }
            out.push(self.redact_url(arg));
        }
        out
    }

    /// A URL with its password and redacted query parameters masked; any
    /// other argument unchanged.
    fn redact_url(&self, arg: &str) -> String {
        let Some(scheme_end) = arg.find("://") else {
            return arg.to_string();
        };
        let rest = &arg[scheme_end + 3..];
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let authority = match authority.rsplit_once('@') {
            Some((userinfo, host)) => format!("{}@{host}", mask_user_password(userinfo)),
            None => authority.to_string(),
        };
        format!(
            "{}{authority}{}",
            &arg[..scheme_end + 3],
            self.redact_target(tail)
        )
    }

    /// A request target (`/path?query#fragment`) with its query masked.
    pub fn redact_target(&self, target: &str) -> String {
        match target.split_once('?') {
            None => target.to_string(),
            Some((path, rest)) => {
                let (query, fragment) = match rest.split_once('#') {
                    Some((q, f)) => (q, Some(f)),
                    None => (rest, None),
                };
                let mut out = format!("{path}?{}", self.redact_query(query));
                if let Some(f) = fragment {
                    out.push('#');
                    out.push_str(f);
                }
                out
            }
        }
    }
}

/// What the argument after a sensitive flag is.
#[derive(Clone, Copy)]
enum NextArg {
    /// A secret.
    Value,
    /// `user:password`.
    UserPassword,
}

/// Names of flags and variables whose values are credentials.
fn is_sensitive_name(name: &str) -> bool {
    const SENSITIVE: &[&str] = &[
        "password",
        "passwd",
        "pass",
        "pwd",
        "secret",
        "token",
        "apikey",
        "api-key",
        "api_key",
        "auth",
        "credential",
        "credentials",
        "private-key",
        "access-key",
    ];
    let n = name.to_ascii_lowercase();
    SENSITIVE
        .iter()
        .any(|s| n == *s || n.ends_with(&format!("-{s}")) || n.ends_with(&format!("_{s}")))
        || n.contains("password")
        || n.contains("secret")
        || n.contains("token")
}

/// `user:password` → `user:[REDACTED]`; a lone user name is kept.
fn mask_user_password(userinfo: &str) -> String {
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:{REDACTED}"),
        None => userinfo.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::MatchKind;

    fn ctx<'a>(
        host: &'a str,
        path: &'a str,
        method: &'a str,
        status: Option<u16>,
        exe: &'a str,
    ) -> RuleContext<'a> {
        RuleContext {
            host: Some(host),
            path,
            method,
            status,
            exe,
        }
    }

    #[test]
    fn levels_parse_and_order() {
        assert_eq!("FULL".parse::<CaptureLevel>().unwrap(), CaptureLevel::Full);
        assert!("loud".parse::<CaptureLevel>().is_err());
        assert!(CaptureLevel::Summary < CaptureLevel::Details);
    }

    #[test]
    fn default_redaction_is_case_insensitive() {
        let c = CaptureSettings::default();
        assert!(c.is_redacted("Authorization"));
        assert!(c.is_redacted("SET-COOKIE"));
        assert!(!c.is_redacted("user-agent"));
    }

    #[test]
    fn header_names_filter_never_hides_a_member() {
        let names: Vec<String> = [
            "x-a",
            "Cookie",
            "",
            "a-very-long-header-name-over-sixty-four-bytes-of-text-and-more-of-it",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let set = HeaderNames::from(names.clone());
        for n in &names {
            assert!(set.contains(n), "{n}");
            assert!(set.contains(&n.to_ascii_uppercase()), "{n}");
        }
        for n in ["x-b", "cookies", "cookie ", "Set-Cookie", "host"] {
            assert!(!set.contains(n), "{n}");
        }
        assert_eq!(set.iter().count(), 4);
        assert!(!HeaderNames::default().contains("cookie"));
    }

    #[test]
    fn host_port_is_ignored() {
        assert_eq!(host_without_port("api.example.com:8080"), "api.example.com");
        assert_eq!(host_without_port("api.example.com"), "api.example.com");
        assert_eq!(host_without_port("[::1]:8080"), "[::1]");
        assert_eq!(host_without_port("::1"), "::1");
    }

    #[test]
    fn each_matcher_kind() {
        let rule = |r: CaptureRule| CaptureSettings {
            rules: vec![CaptureRule {
                level: Some(CaptureLevel::Full),
                ..r
            }],
            ..Default::default()
        };
        let hit = |s: &CaptureSettings, c: RuleContext| s.level_for(&c).0 == CaptureLevel::Full;

        let host = rule(CaptureRule {
            hosts: vec![Matcher::Suffix(".example.com".into())],
            ..Default::default()
        });
        assert!(hit(&host, ctx("API.Example.com:443", "/", "GET", None, "")));
        assert!(!hit(&host, ctx("example.org", "/", "GET", None, "")));
        assert!(!hit(
            &host,
            RuleContext {
                host: None,
                ..ctx("", "/", "GET", None, "")
            }
        ));

        let path = rule(CaptureRule {
            paths: vec![
                Matcher::Prefix("/api/".into()),
                Matcher::regex(r"^/v\d+/orders$").unwrap(),
            ],
            ..Default::default()
        });
        assert!(hit(&path, ctx("h", "/api/users?id=1", "GET", None, "")));
        assert!(hit(&path, ctx("h", "/v2/orders?x", "GET", None, "")));
        assert!(!hit(&path, ctx("h", "/v2/orders/1", "GET", None, "")));
        assert_eq!(path.rules[0].paths[1].kind(), MatchKind::Regex);

        let method = rule(CaptureRule {
            methods: vec!["POST".into(), "PUT".into()],
            ..Default::default()
        });
        assert!(hit(&method, ctx("h", "/", "post", None, "")));
        assert!(!hit(&method, ctx("h", "/", "GET", None, "")));

        let status = rule(CaptureRule {
            statuses: vec!["5xx".parse().unwrap(), "404".parse().unwrap()],
            ..Default::default()
        });
        assert!(hit(&status, ctx("h", "/", "GET", Some(503), "")));
        assert!(hit(&status, ctx("h", "/", "GET", Some(404), "")));
        assert!(!hit(&status, ctx("h", "/", "GET", Some(200), "")));
        assert!(
            !hit(&status, ctx("h", "/", "GET", None, "")),
            "no status yet: no match"
        );

        let exe = rule(CaptureRule {
            exes: vec![
                Matcher::Exact("curl".into()),
                Matcher::Prefix("/opt/app/".into()),
            ],
            ..Default::default()
        });
        assert!(hit(&exe, ctx("h", "/", "GET", None, "/usr/bin/curl")));
        assert!(hit(&exe, ctx("h", "/", "GET", None, "/opt/app/bin/server")));
        assert!(!hit(&exe, ctx("h", "/", "GET", None, "/usr/bin/wget")));
    }

    #[test]
    fn first_match_wins_and_defaults_apply() {
        let s = CaptureSettings {
            level: CaptureLevel::Summary,
            sample_ratio: 0.5,
            rules: vec![
                CaptureRule {
                    paths: vec![Matcher::Prefix("/health".into())],
                    level: Some(CaptureLevel::None),
                    ..Default::default()
                },
                CaptureRule {
                    statuses: vec!["500-599".parse().unwrap()],
                    level: Some(CaptureLevel::Full),
                    sample_ratio: Some(1.0),
                    ..Default::default()
                },
                CaptureRule {
                    paths: vec![Matcher::Prefix("/".into())],
                    sample_ratio: Some(0.1),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        // Rule 1 before rule 2, even for a 500.
        assert_eq!(
            s.level_for(&ctx("h", "/healthz", "GET", Some(500), "")),
            (CaptureLevel::None, 0.5)
        );
        assert_eq!(
            s.level_for(&ctx("h", "/x", "GET", Some(502), "")),
            (CaptureLevel::Full, 1.0)
        );
        // Rule 3: no level of its own, so the capture level.
        assert_eq!(
            s.level_for(&ctx("h", "/x", "GET", Some(200), "")),
            (CaptureLevel::Summary, 0.1)
        );
        // Nothing matches: the capture level and ratio.
        assert_eq!(
            s.level_for(&ctx("h", "", "GET", None, "")),
            (CaptureLevel::Summary, 0.5)
        );
    }

    #[test]
    fn query_redaction() {
        let c = CaptureSettings {
            redact_query_params: vec!["token".into(), "api key".into()],
            ..Default::default()
        };
        assert_eq!(c.redact_query("a=1&token=abc&b"), "a=1&token=REDACTED&b");
        assert_eq!(
            c.redact_query("?TOKEN=x&token="),
            "?TOKEN=REDACTED&token=REDACTED"
        );
        assert_eq!(
            c.redact_query("api%20key=s&api+key=t&x=y"),
            "api%20key=REDACTED&api+key=REDACTED&x=y"
        );
        assert_eq!(c.redact_query(""), "");
        assert_eq!(c.redact_query("tokenish=1&&="), "tokenish=1&&=");
        assert_eq!(c.redact_target("/p?token=1#frag"), "/p?token=REDACTED#frag");
        assert_eq!(c.redact_target("/p"), "/p");
        let d = CaptureSettings::default();
        assert_eq!(
            d.redact_query("X-Amz-Credential=a&sig=b&Signature=c"),
            "X-Amz-Credential=REDACTED&sig=REDACTED&Signature=REDACTED"
        );
    }

    #[test]
    fn aws_presigned_url_credentials_are_masked_by_default() {
        let d = CaptureSettings::default();
        assert_eq!(
            d.redact_query(
                "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20260101&X-Amz-Date=20260101T000000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Security-Token=FQoG&X-Amz-Signature=abc123"
            ),
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=REDACTED&X-Amz-Date=20260101T000000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Security-Token=REDACTED&X-Amz-Signature=REDACTED"
        );
        // Case-insensitive, as every query parameter name.
        for name in [
            "x-amz-signature",
            "X-AMZ-CREDENTIAL",
            "x-Amz-Security-Token",
        ] {
            assert!(d.is_query_param_redacted(name), "{name}");
        }
        assert!(!d.is_query_param_redacted("X-Amz-Date"));
        assert!(!d.is_query_param_redacted("X-Amz-Expires"));
    }

    #[test]
    fn command_args_are_masked_one_for_one() {
        let c = CaptureSettings::default();
        assert_eq!(
            c.redact_command_args([
                "curl",
                "-H",
                "Authorization: Bearer abc",
                "--password",
                "hunter2",
                "https://u:p@h.example/x?token=t",
            ]),
            [
                "curl",
                "-H",
                "Authorization: [REDACTED]",
                "--password",
                "[REDACTED]",
                "https://u:[REDACTED]@h.example/x?token=REDACTED",
            ]
        );
        assert!(c.redact_command_args([]).is_empty());
    }

    #[test]
    fn command_line_credentials_are_masked() {
        let c = CaptureSettings::default();
        let redact = |line: &str| c.redact_command_line(line.split(' '));
        assert_eq!(
            redact("curl -s -H Authorization:Bearer-abc https://api.example.com/v1?id=7"),
            "curl -s -H Authorization: [REDACTED] https://api.example.com/v1?id=7"
        );
        assert_eq!(
            redact("curl -u alice:s3cret https://bob:hunter2@h.example/x?token=t&a=1"),
            "curl -u alice:[REDACTED] https://bob:[REDACTED]@h.example/x?token=REDACTED&a=1"
        );
        assert_eq!(
            redact("app --db-password hunter2 --api-key=k1 --verbose -p 8080"),
            "app --db-password [REDACTED] --api-key=[REDACTED] --verbose -p 8080"
        );
        assert_eq!(
            redact("env GITHUB_TOKEN=ghp_x PATH=/bin ./run"),
            "env GITHUB_TOKEN=[REDACTED] PATH=/bin ./run"
        );
        assert_eq!(
            redact("python3 -m http.server 8080"),
            "python3 -m http.server 8080"
        );
        // Garbage never panics.
        for line in [
            "", "-", "--", "--=", "=", ":", "://", "a://@", "-u", "x://u:p@",
        ] {
            let _ = redact(line);
        }
    }
}
