//! Resource and process attributes for the observed process.
//!
//! The agent adds the `telemetry.sdk.*` and `telemetry.distro.*` attributes
//! (and anything from `OTEL_RESOURCE_ATTRIBUTES`) itself: they describe the
//! agent's build, not the captured process.

use crate::attributes as k;
use crate::model::ProcessInfo;
use crate::value::Attribute;

/// `service.name` when neither a name nor an executable name is known.
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// Process attributes: `process.pid`, `process.executable.path` (when
/// known), `process.executable.name` (executable file name, else the task
/// name, when either is known), `process.command_args` (when any; the
/// argument list as read, credentials masked: the conventions ask not to
/// reassemble `process.command_line` for monitoring), `container.id` and
/// `k8s.pod.uid` (when known).
pub fn process_attributes(p: &ProcessInfo) -> Vec<Attribute> {
    let mut out = Vec::with_capacity(4);
    out.push(Attribute::int(k::PROCESS_PID, i64::from(p.pid)));
    if !p.exe.is_empty() {
        out.push(Attribute::str(k::PROCESS_EXECUTABLE_PATH, p.exe.as_str()));
    }
    let name = p.exe_name();
    if !name.is_empty() {
        out.push(Attribute::str(k::PROCESS_EXECUTABLE_NAME, name));
    }
    if !p.command_args.is_empty() {
        out.push(Attribute::str_array(
            k::PROCESS_COMMAND_ARGS,
            p.command_args.clone(),
        ));
    }
    if let Some(id) = &p.container_id {
        out.push(Attribute::str(k::CONTAINER_ID, id.as_str()));
    }
    if let Some(uid) = &p.k8s_pod_uid {
        out.push(Attribute::str(k::K8S_POD_UID, uid.as_str()));
    }
    out
}

/// The resource of one observed process.
///
/// - `service.name`: `service_name` when given and non-empty, else the
///   executable name, else [`UNKNOWN_SERVICE`];
/// - `service.instance.id`: `"<host_name>/<pid>"` (just `"<pid>"` when
///   `host_name` is empty), unique per host and process;
/// - the [`process_attributes`];
/// - `host.name` (when non-empty) and `os.type` = `linux`.
pub fn process_resource(
    p: &ProcessInfo,
    service_name: Option<&str>,
    host_name: &str,
) -> Vec<Attribute> {
    let exe_name = p.exe_name();
    let service = match service_name.map(str::trim) {
        Some(s) if !s.is_empty() => s,
        _ if !exe_name.is_empty() => exe_name,
        _ => UNKNOWN_SERVICE,
    };
    let instance = if host_name.is_empty() {
        p.pid.to_string()
    } else {
        format!("{host_name}/{}", p.pid)
    };
    let mut out = vec![
        Attribute::str(k::SERVICE_NAME, service),
        Attribute::str(k::SERVICE_INSTANCE_ID, instance),
    ];
    out.extend(process_attributes(p));
    if !host_name.is_empty() {
        out.push(Attribute::str(k::HOST_NAME, host_name));
    }
    out.push(Attribute::str(k::OS_TYPE, "linux"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{find, AttrValue};

    fn s<'a>(attrs: &'a [Attribute], key: &str) -> Option<&'a str> {
        find(attrs, key).and_then(AttrValue::as_str)
    }

    fn curl() -> ProcessInfo {
        ProcessInfo {
            pid: 160239,
            exe: "/usr/bin/curl".into(),
            command_args: vec!["curl".into(), "https://httpbin.org/get".into()],
            comm: "curl".into(),
            ..Default::default()
        }
    }

    #[test]
    fn container_and_pod_attributes() {
        let p = ProcessInfo {
            container_id: Some("ab".repeat(32)),
            k8s_pod_uid: Some("1a2b3c4d-5e6f-7081-92a3-b4c5d6e7f809".into()),
            ..curl()
        };
        let r = process_resource(&p, None, "web-1");
        assert_eq!(s(&r, "container.id"), Some("ab".repeat(32).as_str()));
        assert_eq!(
            s(&r, "k8s.pod.uid"),
            Some("1a2b3c4d-5e6f-7081-92a3-b4c5d6e7f809")
        );
        assert_eq!(
            s(&process_resource(&curl(), None, "h"), "container.id"),
            None
        );
    }

    #[test]
    fn resource_attributes() {
        let r = process_resource(&curl(), Some("checkout"), "web-1");
        assert_eq!(s(&r, k::SERVICE_NAME), Some("checkout"));
        assert_eq!(s(&r, k::SERVICE_INSTANCE_ID), Some("web-1/160239"));
        assert_eq!(
            find(&r, k::PROCESS_PID).and_then(AttrValue::as_int),
            Some(160239)
        );
        assert_eq!(s(&r, k::PROCESS_EXECUTABLE_NAME), Some("curl"));
        assert_eq!(s(&r, k::PROCESS_EXECUTABLE_PATH), Some("/usr/bin/curl"));
        assert_eq!(
            find(&r, "process.command_args"),
            Some(&AttrValue::StrArray(vec![
                "curl".into(),
                "https://httpbin.org/get".into()
            ]))
        );
        assert_eq!(find(&r, "process.command_line"), None);
        assert_eq!(s(&r, k::HOST_NAME), Some("web-1"));
        assert_eq!(s(&r, k::OS_TYPE), Some("linux"));
    }

    #[test]
    fn service_name_fallback() {
        let p = curl();
        assert_eq!(
            s(&process_resource(&p, None, "h"), k::SERVICE_NAME),
            Some("curl")
        );
        assert_eq!(
            s(&process_resource(&p, Some("  "), "h"), k::SERVICE_NAME),
            Some("curl")
        );
        let comm_only = ProcessInfo {
            exe: String::new(),
            comm: "kworker".into(),
            ..curl()
        };
        assert_eq!(
            s(&process_resource(&comm_only, None, "h"), k::SERVICE_NAME),
            Some("kworker")
        );
        let nothing = ProcessInfo {
            pid: 1,
            ..Default::default()
        };
        let r = process_resource(&nothing, None, "");
        assert_eq!(s(&r, k::SERVICE_NAME), Some(UNKNOWN_SERVICE));
        assert_eq!(s(&r, k::SERVICE_INSTANCE_ID), Some("1"));
        assert_eq!(find(&r, k::HOST_NAME), None);
        assert_eq!(find(&r, k::PROCESS_EXECUTABLE_PATH), None);
        assert_eq!(find(&r, k::PROCESS_EXECUTABLE_NAME), None);
        assert_eq!(find(&r, "process.command_args"), None);
    }
}
