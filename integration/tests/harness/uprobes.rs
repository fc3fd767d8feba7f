//! The uprobes attached on this machine, read from the kernel's BPF links
//! (`bpf(2)`: walk the link ids, read each perf-event link's info). aya
//! attaches uprobes through the perf PMU, so they are not in tracefs'
//! `uprobe_events`, and Debian's bpftool is too old to print a link's file.

use std::mem::size_of;

const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_LINK_GET_FD_BY_ID: libc::c_long = 30;
const BPF_LINK_GET_NEXT_ID: libc::c_long = 31;
const BPF_LINK_TYPE_PERF_EVENT: u32 = 7;
const BPF_PERF_EVENT_UPROBE: u32 = 1;
const BPF_PERF_EVENT_URETPROBE: u32 = 2;

/// `union bpf_attr` for the id walk (start_id/link_id, next_id, open_flags).
#[repr(C)]
#[derive(Default)]
struct IdAttr {
    id: u32,
    next_id: u32,
    open_flags: u32,
}

/// `union bpf_attr` for BPF_OBJ_GET_INFO_BY_FD.
#[repr(C)]
#[derive(Default)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// The head of `struct bpf_link_info` with its `perf_event.uprobe` member
/// (kernel 6.6+), padded to the struct's size.
#[repr(C)]
struct LinkInfo {
    link_type: u32,
    id: u32,
    prog_id: u32,
    _pad: u32,
    perf_type: u32,
    _pad2: u32,
    file_name: u64,
    name_len: u32,
    offset: u32,
    _rest: [u64; 12],
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> libc::c_long {
    // SAFETY: attr is a valid bpf_attr prefix of the given size.
    unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, size_of::<T>()) }
}

/// Ids of the BPF links process `pid` holds open (`link_id` in its fdinfo).
fn link_ids_of(pid: u32) -> std::collections::HashSet<u32> {
    let dir = format!("/proc/{pid}/fdinfo");
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("link_id:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .collect()
}

/// The file of every uprobe (and uretprobe) that process `pid` attached
/// through a BPF link, one entry per probe, as the path it was attached by.
pub fn uprobe_files_of(pid: u32) -> Vec<String> {
    let mine = link_ids_of(pid);
    let mut out = Vec::new();
    let mut id = 0;
    loop {
        let mut next = IdAttr {
            id,
            ..Default::default()
        };
        if bpf(BPF_LINK_GET_NEXT_ID, &mut next) != 0 {
            break; // ENOENT: no more links
        }
        id = next.next_id;
        if !mine.contains(&id) {
            continue;
        }
        let mut get = IdAttr {
            id,
            ..Default::default()
        };
        let fd = bpf(BPF_LINK_GET_FD_BY_ID, &mut get);
        if fd < 0 {
            continue; // detached meanwhile
        }
        let mut name = [0u8; 4096];
        // SAFETY: plain old data, all-zero is valid.
        let mut info: LinkInfo = unsafe { std::mem::zeroed() };
        info.file_name = name.as_mut_ptr() as u64;
        info.name_len = name.len() as u32;
        let mut attr = InfoAttr {
            bpf_fd: fd as u32,
            info_len: size_of::<LinkInfo>() as u32,
            info: &mut info as *mut LinkInfo as u64,
        };
        let r = bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr);
        // SAFETY: fd is ours.
        unsafe { libc::close(fd as i32) };
        if r != 0
            || info.link_type != BPF_LINK_TYPE_PERF_EVENT
            || !matches!(
                info.perf_type,
                BPF_PERF_EVENT_UPROBE | BPF_PERF_EVENT_URETPROBE
            )
        {
            continue;
        }
        let len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        out.push(String::from_utf8_lossy(&name[..len]).into_owned());
    }
    out
}
