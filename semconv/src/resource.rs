//! Resource and process attributes for the observed process.
//!
//! The agent adds the `telemetry.sdk.*` and `telemetry.distro.*` attributes
//! (and anything from `OTEL_RESOURCE_ATTRIBUTES`) itself: they describe the
//! agent's build, not the captured process.

use uuid::Uuid;

use crate::attributes as k;
use crate::model::ProcessInfo;
use crate::value::{Attribute, AttributeSink};

/// `service.name` when neither a name nor an executable name is known.
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// The namespace of `service.instance.id` UUIDs:
/// `4d63009a-8d0f-11ee-aad7-4c796ed8e320`, the one the semantic conventions
/// give for a UUID v5 made from an inherent unique id (`service.instance.id`,
/// pinned version 1.42.0).
pub const SERVICE_INSTANCE_NAMESPACE: Uuid =
    Uuid::from_u128(0x4d63009a_8d0f_11ee_aad7_4c796ed8e320);

/// `service.instance.id` of an observed process: the UUID v5, in
/// [`SERVICE_INSTANCE_NAMESPACE`], of `"<host_name>/<pid>"` (just `"<pid>"`
/// when the host name is unknown). Stable for the life of the process and
/// the same from every agent restart; unique per host and process at any one
/// time. (The process start time would also set apart a later process that
/// reuses the pid, but the capture model does not carry it.) The name
/// itself is not exported: only the opaque UUID, as the conventions advise.
pub fn service_instance_id(host_name: &str, pid: u32) -> String {
    let name = if host_name.is_empty() {
        pid.to_string()
    } else {
        format!("{host_name}/{pid}")
    };
    Uuid::new_v5(&SERVICE_INSTANCE_NAMESPACE, name.as_bytes()).to_string()
}

/// Process attributes: `process.pid`, `process.executable.path` (when
/// known), `process.executable.name` (executable file name, else the task
/// name, when either is known), `process.command_args` (when any; the
/// argument list as read, credentials masked: the conventions ask not to
/// reassemble `process.command_line` for monitoring), `container.id` and
/// `k8s.pod.uid` (when known).
pub fn process_attributes(p: &ProcessInfo, out: &mut impl AttributeSink) {
    out.int(k::PROCESS_PID, i64::from(p.pid));
    if !p.exe.is_empty() {
        out.str(k::PROCESS_EXECUTABLE_PATH, &p.exe);
    }
    let name = p.exe_name();
    if !name.is_empty() {
        out.str(k::PROCESS_EXECUTABLE_NAME, name);
    }
    if !p.command_args.is_empty() {
        out.str_array(k::PROCESS_COMMAND_ARGS, &p.command_args);
    }
    if let Some(id) = &p.container_id {
        out.str(k::CONTAINER_ID, id);
    }
    if let Some(uid) = &p.k8s_pod_uid {
        out.str(k::K8S_POD_UID, uid);
    }
}

/// The resource of one observed process.
///
/// - `service.name`: `service_name` when given and non-empty, else the
///   executable name, else [`UNKNOWN_SERVICE`];
/// - `service.instance.id`: [`service_instance_id`], a UUID v5 of the host
///   name and pid;
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
    let mut out = vec![
        Attribute::str(k::SERVICE_NAME, service),
        Attribute::str(
            k::SERVICE_INSTANCE_ID,
            service_instance_id(host_name, p.pid),
        ),
    ];
    process_attributes(p, &mut out);
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
        // UUID v5 of "web-1/160239" in 4d63009a-8d0f-11ee-aad7-4c796ed8e320.
        assert_eq!(
            s(&r, "service.instance.id"),
            Some("0a56a8ff-2b60-533f-b75f-a29c3a7f140a")
        );
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
    fn service_instance_ids_are_uuid_v5_of_host_and_pid() {
        assert_eq!(
            SERVICE_INSTANCE_NAMESPACE.to_string(),
            "4d63009a-8d0f-11ee-aad7-4c796ed8e320"
        );
        let id = service_instance_id("web-1", 160239);
        assert_eq!(id, "0a56a8ff-2b60-533f-b75f-a29c3a7f140a");
        let parsed = Uuid::parse_str(&id).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 5);
        // Same input, same id (stable across restarts); another pid or host, another id.
        assert_eq!(service_instance_id("web-1", 160239), id);
        assert_ne!(service_instance_id("web-1", 160240), id);
        assert_ne!(service_instance_id("web-2", 160239), id);
        assert_eq!(
            service_instance_id("", 160239),
            "839534e9-a8d9-5d0e-8eab-d099a85395fd"
        );
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
        // UUID v5 of "1": no host name.
        assert_eq!(
            s(&r, "service.instance.id"),
            Some("9e41e36a-ca82-5070-9dfe-7de047467609")
        );
        assert_eq!(find(&r, k::HOST_NAME), None);
        assert_eq!(find(&r, k::PROCESS_EXECUTABLE_PATH), None);
        assert_eq!(find(&r, k::PROCESS_EXECUTABLE_NAME), None);
        assert_eq!(find(&r, "process.command_args"), None);
    }
}
