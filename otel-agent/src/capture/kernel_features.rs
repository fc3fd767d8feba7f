//! What the probes need from the kernel, checked at start-up by asking the
//! kernel itself — loading a map or a one-instruction program that uses each
//! feature — not by its version number, since vendor kernels backport.

use std::path::Path;

use aya::maps::MapType;
use aya::programs::ProgramType;
use aya::sys::{is_helper_supported, is_map_supported, is_program_supported, BpfHelper};

/// One kernel feature the probes use.
#[derive(Clone, Copy, Debug)]
pub struct Feature {
    /// What it is, as a user would search for it.
    pub name: &'static str,
    /// The mainline release that brought it.
    pub since: &'static str,
    check: Check,
}

#[derive(Clone, Copy, Debug)]
enum Check {
    Btf,
    Map(MapType),
    Program(ProgramType),
    /// A helper, from the program type that calls it.
    Helper(ProgramType, BpfHelper),
}

const fn helper(name: &'static str, since: &'static str, pt: ProgramType, h: BpfHelper) -> Feature {
    Feature {
        name,
        since,
        check: Check::Helper(pt, h),
    }
}

/// The oldest mainline kernel that has every feature below.
pub const MINIMUM_KERNEL: &str = "5.13";

/// Every kernel feature the eBPF programs use (`bpf-probes/bpf`): the maps,
/// the program types, and each helper from the program type that calls it
/// (tracepoints for the socket side, uprobes — kprobe-type programs — for
/// TLS).
pub const FEATURES: &[Feature] = &[
    Feature {
        name: "kernel BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF=y)",
        since: "5.4",
        check: Check::Btf,
    },
    Feature {
        name: "BPF ring buffer maps",
        since: "5.8",
        check: Check::Map(MapType::RingBuf),
    },
    Feature {
        name: "BPF task storage maps",
        since: "5.11",
        check: Check::Map(MapType::TaskStorage),
    },
    Feature {
        name: "tracepoint programs",
        since: "4.7",
        check: Check::Program(ProgramType::TracePoint),
    },
    Feature {
        name: "uprobe (kprobe-type) programs",
        since: "4.1",
        check: Check::Program(ProgramType::KProbe),
    },
    helper(
        "bpf_get_current_task_btf",
        "5.11",
        ProgramType::TracePoint,
        BpfHelper::BPF_FUNC_get_current_task_btf,
    ),
    helper(
        "bpf_task_storage_get",
        "5.11",
        ProgramType::TracePoint,
        BpfHelper::BPF_FUNC_task_storage_get,
    ),
    helper(
        "bpf_for_each_map_elem",
        "5.13",
        ProgramType::TracePoint,
        BpfHelper::BPF_FUNC_for_each_map_elem,
    ),
    helper(
        "bpf_ringbuf_reserve",
        "5.8",
        ProgramType::TracePoint,
        BpfHelper::BPF_FUNC_ringbuf_reserve,
    ),
    helper(
        "bpf_ringbuf_query",
        "5.8",
        ProgramType::TracePoint,
        BpfHelper::BPF_FUNC_ringbuf_query,
    ),
    helper(
        "bpf_probe_read_kernel",
        "5.5",
        ProgramType::TracePoint,
        BpfHelper::BPF_FUNC_probe_read_kernel,
    ),
    helper(
        "bpf_tail_call",
        "4.2",
        ProgramType::TracePoint,
        BpfHelper::BPF_FUNC_tail_call,
    ),
    helper(
        "bpf_probe_read_user (from uprobes)",
        "5.5",
        ProgramType::KProbe,
        BpfHelper::BPF_FUNC_probe_read_user,
    ),
    helper(
        "bpf_ringbuf_output (from uprobes)",
        "5.8",
        ProgramType::KProbe,
        BpfHelper::BPF_FUNC_ringbuf_output,
    ),
];

/// What the kernel answered about one feature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// It is there.
    Present,
    /// It is missing.
    Missing,
    /// The probe itself failed (the error), so nothing is known.
    Unknown(String),
}

impl Feature {
    /// Ask the kernel.
    pub fn probe(&self) -> Answer {
        let answer = match self.check {
            Check::Btf => Ok(Path::new("/sys/kernel/btf/vmlinux").exists()),
            Check::Map(t) => is_map_supported(t).map_err(|e| e.to_string()),
            Check::Program(t) => is_program_supported(t).map_err(|e| e.to_string()),
            Check::Helper(t, h) => is_helper_supported(t, h).map_err(|e| e.to_string()),
        };
        match answer {
            Ok(true) => Answer::Present,
            Ok(false) => Answer::Missing,
            Err(e) => Answer::Unknown(e),
        }
    }
}

/// The features this kernel lacks, and those it could not be asked about
/// (with the reason), in table order.
pub fn probe_all() -> (Vec<&'static Feature>, Vec<(&'static Feature, String)>) {
    let (mut missing, mut unknown) = (Vec::new(), Vec::new());
    for f in FEATURES {
        match f.probe() {
            Answer::Present => {}
            Answer::Missing => missing.push(f),
            Answer::Unknown(e) => unknown.push((f, e)),
        }
    }
    (missing, unknown)
}

/// The start-up message for missing features: each with the release that
/// brought it.
pub fn describe_missing(missing: &[&Feature]) -> String {
    let list: Vec<String> = missing
        .iter()
        .map(|f| format!("{} (Linux {})", f.name, f.since))
        .collect();
    format!(
        "this kernel lacks what otel-agent's eBPF programs need: {}. otel-agent needs \
         Linux >= {MINIMUM_KERNEL} with BTF, or a vendor kernel with these backported",
        list.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minimum_is_the_newest_feature() {
        let newest = FEATURES
            .iter()
            .map(|f| {
                let (major, minor) = f.since.split_once('.').unwrap();
                (major.parse::<u32>().unwrap(), minor.parse::<u32>().unwrap())
            })
            .max()
            .unwrap();
        assert_eq!(format!("{}.{}", newest.0, newest.1), MINIMUM_KERNEL);
    }

    #[test]
    fn the_message_names_each_missing_feature_and_its_release() {
        let named = |name: &str| FEATURES.iter().find(|f| f.name == name).unwrap();
        let m = describe_missing(&[
            named("BPF ring buffer maps"),
            named("bpf_for_each_map_elem"),
        ]);
        assert!(m.contains("BPF ring buffer maps (Linux 5.8)"), "{m}");
        assert!(m.contains("bpf_for_each_map_elem (Linux 5.13)"), "{m}");
        assert!(m.contains("Linux >= 5.13"), "{m}");
    }

    #[test]
    fn this_kernel_has_every_feature() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!(
                "SKIPPED this_kernel_has_every_feature: probing the kernel needs root \
                 (CI runs as root; the end-to-end tests load the real probes)"
            );
            return;
        }
        let (missing, unknown) = probe_all();
        assert!(missing.is_empty(), "{}", describe_missing(&missing));
        assert!(unknown.is_empty(), "{unknown:?}");
    }
}
