//! Where in an x86-64 function a uprobe can sit without a single-step.
//!
//! A uprobe is an `int3` over one instruction; once its programs have run, the
//! kernel still has to execute the instruction it replaced. Direct branches
//! (`jmp`, `jcc`, `call rel32`), `push reg` and `nop` it emulates; anything else
//! it copies out of line and single-steps, and on these VMs that debug trap
//! goes through the hypervisor: ~11.7 µs a hit against ~1.2 µs for an emulated
//! one (BENCHMARKS.md, "Uprobe cost"). The first instruction of `SSL_write` or `SSL_read` is a
//! `sub $n,%rsp`, single-stepped on every call.
//!
//! So, when the code allows it:
//! - an **entry site**: the first emulated instruction of the entry block, when
//!   nothing before it writes an argument register or non-stack memory and no
//!   branch leads back into the block — the arguments are still in place there;
//! - a **return site**: the emulated instruction nearest before the function's
//!   only `ret` (in practice the stack-protector `jne`), when nothing after it
//!   writes `rax` and every path to the `ret` goes through it. A plain uprobe
//!   there reads the return value like a uretprobe would, without the
//!   uretprobe's breakpoint on the (single-stepped) first instruction.
//!
//! Anything unusual (undecodable bytes, indirect jumps, tail calls, several
//! `ret`s) gives no site, and the probes stay where they always were.
//!
//! A Go function's entry site must be its prologue's stack check, `cmp
//! 0x10(%r14),%rsp` (or `%r12` after a `lea`, for larger frames) then `jbe`
//! to the `runtime.morestack` call: when the stack must grow, or the
//! goroutine is asked to yield, Go runs the function again from its first
//! instruction, so any site in the prologue is hit twice for one call. At the
//! `jbe` the entry program sees in the flags whether it is about to be taken
//! (`bpf/tls/go.h`) and skips that hit; anywhere else it could not tell.

use iced_x86::{
    Code, ConditionCode, Decoder, DecoderOptions, FlowControl, Instruction, InstructionInfo,
    InstructionInfoFactory, OpAccess, OpKind, Register,
};

/// Probe sites of one function, as virtual addresses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sites {
    /// An emulated instruction where the arguments are still intact.
    pub entry: Option<u64>,
    /// An emulated instruction where `rax` holds the return value.
    pub ret: Option<u64>,
}

/// The calling convention of a probed function: which registers carry its
/// integer arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Abi {
    /// System V x86-64 (C libraries).
    SysV,
    /// Go's internal register ABI (Go ≥ 1.17 on amd64).
    Go,
}

impl Abi {
    fn argument_registers(self) -> &'static [Register] {
        match self {
            Abi::SysV => &[
                Register::RDI,
                Register::RSI,
                Register::RDX,
                Register::RCX,
                Register::R8,
                Register::R9,
            ],
            Abi::Go => &[
                Register::RAX,
                Register::RBX,
                Register::RCX,
                Register::RDI,
                Register::RSI,
                Register::R8,
                Register::R9,
                Register::R10,
                Register::R11,
            ],
        }
    }
}

/// Longest function looked at: the probed functions are small wrappers.
const MAX_FUNCTION_BYTES: usize = 64 * 1024;

/// Find the sites of the function whose machine code is `code`, loaded at
/// `start`, taking `arity` integer arguments in the registers of `abi`.
pub fn find(code: &[u8], start: u64, abi: Abi, arity: usize) -> Sites {
    if code.is_empty() || code.len() > MAX_FUNCTION_BYTES {
        return Sites::default();
    }
    let Some(function) = Function::decode(code, start) else {
        return Sites::default();
    };
    let registers = abi.argument_registers();
    let arguments = &registers[..arity.min(registers.len())];
    let entry = function
        .entry_site(arguments)
        .filter(|&site| abi != Abi::Go || function.is_go_stack_check(site));
    // The return site must run after the entry site (the entry block, up to
    // its site, is straight-line code: anything at a higher address is later).
    let ret = function
        .return_site()
        .filter(|&r| entry.is_none_or(|e| r > e));
    Sites { entry, ret }
}

/// Every `ret` of the function whose machine code is `code`, loaded at
/// `start`, as virtual addresses — where plain uprobes see its results
/// (Go's functions have several). Empty when any way out is not a `ret`
/// (an indirect jump, a tail call) or the code does not decode: a call whose
/// return is not seen must not be probed at all.
pub fn ret_sites(code: &[u8], start: u64) -> Vec<u64> {
    if code.is_empty() || code.len() > MAX_FUNCTION_BYTES {
        return Vec::new();
    }
    let Some(function) = Function::decode(code, start) else {
        return Vec::new();
    };
    if function.indirect || function.tail_call {
        return Vec::new();
    }
    function
        .instructions
        .iter()
        .filter(|i| i.flow_control() == FlowControl::Return)
        .map(Instruction::ip)
        .collect()
}

/// One decoded function.
struct Function<'a> {
    code: &'a [u8],
    start: u64,
    end: u64,
    instructions: Vec<Instruction>,
    /// Targets of the direct branches inside the function.
    targets: Vec<u64>,
    /// An indirect jump: control can go where this analysis does not follow.
    indirect: bool,
    /// A direct jump out of the function (a tail call): a way out without the `ret`.
    tail_call: bool,
}

impl<'a> Function<'a> {
    fn decode(code: &'a [u8], start: u64) -> Option<Self> {
        let end = start.checked_add(code.len() as u64)?;
        let mut decoder = Decoder::with_ip(64, code, start, DecoderOptions::NONE);
        let mut instructions = Vec::new();
        let mut targets = Vec::new();
        let (mut indirect, mut tail_call) = (false, false);
        let mut ins = Instruction::default();
        while decoder.can_decode() {
            decoder.decode_out(&mut ins);
            if ins.is_invalid() {
                return None;
            }
            match ins.flow_control() {
                FlowControl::ConditionalBranch | FlowControl::UnconditionalBranch => {
                    let t = ins.near_branch_target();
                    if (start..end).contains(&t) {
                        targets.push(t);
                    } else {
                        tail_call = true;
                    }
                }
                FlowControl::IndirectBranch | FlowControl::XbeginXabortXend => indirect = true,
                _ => {}
            }
            instructions.push(ins);
        }
        Some(Self {
            code,
            start,
            end,
            instructions,
            targets,
            indirect,
            tail_call,
        })
    }

    fn bytes(&self, ins: &Instruction) -> &[u8] {
        let from = (ins.ip() - self.start) as usize;
        self.code.get(from..from + ins.len()).unwrap_or(&[])
    }

    /// Whether a branch inside the function lands in `(from, to]`.
    fn targeted_in(&self, from: u64, to: u64) -> bool {
        self.targets.iter().any(|&t| t > from && t <= to)
    }

    fn entry_site(&self, arguments: &[Register]) -> Option<u64> {
        if self.indirect {
            return None;
        }
        let mut info = InstructionInfoFactory::new();
        for ins in &self.instructions {
            if is_emulated(self.bytes(ins)) {
                return (!self.targeted_in(self.start, ins.ip())).then_some(ins.ip());
            }
            if ins.flow_control() != FlowControl::Next {
                return None;
            }
            let used = info.info(ins);
            if writes(used, arguments) || writes_non_stack_memory(used) {
                return None;
            }
        }
        None
    }

    /// Whether the instruction at `site` is a Go prologue's `jbe` to
    /// `runtime.morestack`: right after the compare of the stack pointer
    /// (`rsp`, or `r12` loaded by a `lea` from it) with `g.stackguard0`
    /// (`0x10(%r14)`), both the function's first instructions.
    fn is_go_stack_check(&self, site: u64) -> bool {
        let Some(at) = self.instructions.iter().position(|i| i.ip() == site) else {
            return false;
        };
        let jbe = &self.instructions[at];
        if jbe.flow_control() != FlowControl::ConditionalBranch
            || jbe.condition_code() != ConditionCode::be
        {
            return false;
        }
        let compares_with_the_guard = |cmp: &Instruction, register: Register| {
            cmp.code() == Code::Cmp_r64_rm64
                && cmp.op0_register() == register
                && cmp.op1_kind() == OpKind::Memory
                && cmp.memory_base() == Register::R14
                && cmp.memory_index() == Register::None
                && cmp.memory_displacement64() == 0x10
        };
        match at {
            1 => compares_with_the_guard(&self.instructions[0], Register::RSP),
            2 => {
                let lea = &self.instructions[0];
                lea.code() == Code::Lea_r64_m
                    && lea.op0_register() == Register::R12
                    && lea.memory_base() == Register::RSP
                    && lea.memory_index() == Register::None
                    && compares_with_the_guard(&self.instructions[1], Register::R12)
            }
            _ => false,
        }
    }

    fn return_site(&self) -> Option<u64> {
        if self.indirect || self.tail_call {
            return None;
        }
        let mut rets = self
            .instructions
            .iter()
            .enumerate()
            .filter(|(_, i)| i.flow_control() == FlowControl::Return);
        let (ret_index, ret) = rets.next()?;
        if rets.next().is_some() {
            return None;
        }
        let mut info = InstructionInfoFactory::new();
        for ins in self.instructions[..ret_index].iter().rev() {
            // Every path to the `ret` must come through `ins`.
            if self.targeted_in(ins.ip(), ret.ip()) {
                return None;
            }
            let bytes = self.bytes(ins);
            if is_emulated(bytes) && !is_unconditional_jump(bytes) {
                if ins.flow_control() == FlowControl::ConditionalBranch
                    && !self.never_returns_from(ins.near_branch_target())
                {
                    return None;
                }
                return Some(ins.ip());
            }
            if ins.flow_control() != FlowControl::Next || writes(info.info(ins), &[Register::RAX]) {
                return None;
            }
        }
        None
    }

    /// Whether the code at `target` runs straight into a call that is the
    /// function's last instruction (`__stack_chk_fail` and the like): a
    /// branch there never comes back to the `ret`.
    fn never_returns_from(&self, target: u64) -> bool {
        let Some(first) = self.instructions.iter().position(|i| i.ip() == target) else {
            return false;
        };
        for ins in &self.instructions[first..] {
            match ins.flow_control() {
                FlowControl::Next => continue,
                FlowControl::Call => {
                    return ins.next_ip() >= self.end
                        || self
                            .instructions
                            .iter()
                            .find(|i| i.ip() == ins.next_ip())
                            .is_some_and(|i| {
                                matches!(
                                    i.flow_control(),
                                    FlowControl::Interrupt | FlowControl::Exception
                                )
                            })
                }
                _ => return false,
            }
        }
        false
    }
}

/// Whether the instruction writes (any part of) one of `registers`.
fn writes(used: &InstructionInfo, registers: &[Register]) -> bool {
    used.used_registers()
        .iter()
        .any(|u| is_write(u.access()) && registers.contains(&u.register().full_register()))
}

/// Whether the instruction stores to memory not addressed from the stack
/// pointer (it could be the buffer an entry program reads).
fn writes_non_stack_memory(used: &InstructionInfo) -> bool {
    used.used_memory()
        .iter()
        .any(|m| is_write(m.access()) && m.base() != Register::RSP)
}

fn is_write(access: OpAccess) -> bool {
    matches!(
        access,
        OpAccess::Write | OpAccess::CondWrite | OpAccess::ReadWrite | OpAccess::ReadCondWrite
    )
}

/// The instructions the x86 uprobe code emulates instead of single-stepping
/// (`branch_setup_xol_ops` and `push_setup_xol_ops` in arch/x86/kernel/uprobes.c),
/// matched on their exact encodings, without prefixes.
fn is_emulated(bytes: &[u8]) -> bool {
    match *bytes {
        // nop; push r64; push r8..r15
        [0x90] | [0x50..=0x57] | [0x41, 0x50..=0x57] => true,
        // jcc rel8; jmp rel8
        [0x70..=0x7f, _] | [0xeb, _] => true,
        // call rel32; jmp rel32
        [0xe8, _, _, _, _] | [0xe9, _, _, _, _] => true,
        // jcc rel32
        [0x0f, 0x80..=0x8f, _, _, _, _] => true,
        _ => false,
    }
}

fn is_unconditional_jump(bytes: &[u8]) -> bool {
    matches!(bytes.first(), Some(0xeb | 0xe9))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `SSL_read` of Debian 12's libssl.so.3 (OpenSSL 3.0), at 0x35430.
    const SSL_READ: &[u8] = &[
        0x48, 0x83, 0xec, 0x18, // sub $0x18,%rsp
        0x64, 0x48, 0x8b, 0x04, 0x25, 0x28, 0x00, 0x00, 0x00, // mov %fs:0x28,%rax
        0x48, 0x89, 0x44, 0x24, 0x08, // mov %rax,0x8(%rsp)
        0x31, 0xc0, // xor %eax,%eax
        0x85, 0xd2, // test %edx,%edx
        0x78, 0x2f, // js 35477            <- entry site (+0x16)
        0x48, 0x89, 0xe1, // mov %rsp,%rcx
        0x48, 0x63, 0xd2, // movslq %edx,%rdx
        0xe8, 0x3d, 0xfe, 0xff, 0xff, // call 35290
        0x85, 0xc0, // test %eax,%eax
        0x7e, 0x03, // jle 3545a
        0x8b, 0x04, 0x24, // mov (%rsp),%eax
        0x48, 0x8b, 0x54, 0x24, 0x08, // 3545a: mov 0x8(%rsp),%rdx
        0x64, 0x48, 0x2b, 0x14, 0x25, 0x28, 0x00, 0x00, 0x00, // sub %fs:0x28,%rdx
        0x75, 0x44, // jne 354ae            <- return site (+0x38)
        0x48, 0x83, 0xc4, 0x18, // add $0x18,%rsp
        0x31, 0xd2, 0x31, 0xc9, 0x31, 0xf6, 0x31, 0xff, // xor edx, ecx, esi, edi
        0xc3, // ret
        0xe8, 0x44, 0x9f, 0xfe, 0xff, // 35477: call ERR_new
        0x48, 0x8d, 0x15, 0x05, 0xd5, 0x04, 0x00, // lea ...(%rip),%rdx
        0xbe, 0x4c, 0x07, 0x00, 0x00, // mov $0x74c,%esi
        0x48, 0x8d, 0x3d, 0x62, 0xcc, 0x04, 0x00, // lea ...(%rip),%rdi
        0xe8, 0x2c, 0xa6, 0xfe, 0xff, // call ERR_set_debug
        0x31, 0xc0, 0x31, 0xd2, // xor eax, edx
        0xbe, 0x0f, 0x01, 0x00, 0x00, // mov $0x10f,%esi
        0xbf, 0x14, 0x00, 0x00, 0x00, // mov $0x14,%edi
        0xe8, 0x49, 0xa4, 0xfe, 0xff, // call ERR_set_error
        0xb8, 0xff, 0xff, 0xff, 0xff, // mov $-1,%eax
        0xeb, 0xac, // jmp 3545a
        0xe8, 0x3d, 0xb1, 0xfe, 0xff, // 354ae: call __stack_chk_fail
    ];
    const SSL_READ_AT: u64 = 0x35430;

    #[test]
    fn ssl_read_has_an_entry_and_a_return_site() {
        let s = find(SSL_READ, SSL_READ_AT, Abi::SysV, 3);
        assert_eq!(s.entry, Some(SSL_READ_AT + 0x16));
        assert_eq!(s.ret, Some(SSL_READ_AT + 0x38));
    }

    #[test]
    fn a_function_starting_with_push_is_its_own_entry_site() {
        // push %rbp; mov %rsp,%rbp; pop %rbp; ret
        let s = find(&[0x55, 0x48, 0x89, 0xe5, 0x5d, 0xc3], 0x1000, Abi::SysV, 3);
        assert_eq!(s.entry, Some(0x1000));
        // The only emulated instruction before the ret is the entry site itself.
        assert_eq!(s.ret, None);
    }

    #[test]
    fn an_argument_written_before_the_first_branch_gives_no_entry_site() {
        // mov $1,%esi; jmp +0; ret
        let s = find(
            &[0xbe, 0x01, 0, 0, 0, 0xeb, 0x00, 0xc3],
            0x1000,
            Abi::SysV,
            3,
        );
        assert_eq!(s.entry, None);
        // gnutls_record_send: xor %r8d,%r8d; xor %ecx,%ecx; jmp gnutls_record_send2.
        // It takes three arguments: rcx and r8 are free to change.
        let code = [0x45, 0x31, 0xc0, 0x31, 0xc9, 0xe9, 0x66, 0x9c, 0xff, 0xff];
        assert_eq!(find(&code, 0x3f2d0, Abi::SysV, 3).entry, Some(0x3f2d5));
        assert_eq!(find(&code, 0x3f2d0, Abi::SysV, 4).entry, None);
    }

    #[test]
    fn rax_written_after_the_candidate_gives_no_return_site() {
        // test %eax,%eax; jne +2 (to the call); xor %eax,%eax; ret; call rel32 (noreturn)
        let code = [0x85, 0xc0, 0x75, 0x03, 0x31, 0xc0, 0xc3, 0xe8, 0, 0, 0, 0];
        assert_eq!(find(&code, 0x1000, Abi::SysV, 3).ret, None);
        // Without the xor, the jne is a return site.
        let code = [0x85, 0xc0, 0x75, 0x01, 0xc3, 0xe8, 0, 0, 0, 0];
        let f = Function::decode(&code, 0x1000).unwrap();
        assert_eq!(f.return_site(), Some(0x1002));
        // ... but not for find(): it is the entry site as well.
        assert_eq!(find(&code, 0x1000, Abi::SysV, 3).ret, None);
    }

    #[test]
    fn a_loop_back_into_the_entry_block_gives_no_entry_site() {
        // 1000: sub $8,%rsp; 1004: test %edi,%edi; 1006: jne 1004; ret
        let code = [0x48, 0x83, 0xec, 0x08, 0x85, 0xff, 0x75, 0xfc, 0xc3];
        assert_eq!(find(&code, 0x1000, Abi::SysV, 3).entry, None);
    }

    #[test]
    fn a_tail_call_or_two_rets_give_no_return_site() {
        // test; jne +1; ret; jmp far away (tail call)
        let code = [0x85, 0xc0, 0x75, 0x01, 0xc3, 0xe9, 0, 0x10, 0, 0];
        let f = Function::decode(&code, 0x1000).unwrap();
        assert_eq!(f.return_site(), None);
        // test; jne +1; ret; ret
        let code = [0x85, 0xc0, 0x75, 0x01, 0xc3, 0xc3];
        let f = Function::decode(&code, 0x1000).unwrap();
        assert_eq!(f.return_site(), None);
    }

    /// A Go function's shape: stack check, several returns, morestack tail.
    #[test]
    fn a_go_function_has_its_stack_check_branch_as_entry_and_every_ret() {
        let code = [
            0x49, 0x3b, 0x66, 0x10, // 1000: cmp 0x10(%r14),%rsp
            0x76, 0x0d, // 1004: jbe 1013 (morestack)  <- entry site
            0x48, 0x85, 0xdb, // 1006: test %rbx,%rbx
            0x74, 0x02, // 1009: je 100d
            0x5d, 0xc3, // 100b: pop %rbp; ret
            0x31, 0xc0, // 100d: xor %eax,%eax
            0x5d, 0xc3, // 100f: pop %rbp; ret
            0x90, 0x90, // 1011: nop; nop
            0xe8, 0, 0, 0, 0, // 1013: call morestack
            0xeb, 0xe6, // 1018: jmp 1000
        ];
        let s = find(&code, 0x1000, Abi::Go, 4);
        assert_eq!(s.entry, Some(0x1004));
        // rbx is a Go argument: writing it before the branch gives no site.
        assert_eq!(
            find(&[0x31, 0xdb, 0x76, 0x00, 0xc3], 0x1000, Abi::Go, 4).entry,
            None
        );
        assert_eq!(ret_sites(&code, 0x1000), [0x100c, 0x1010]);
        // A larger frame: lea -0x58(%rsp),%r12; cmp 0x10(%r14),%r12; jbe.
        let large = [
            0x4c, 0x8d, 0x64, 0x24, 0xa8, // 1000: lea -0x58(%rsp),%r12
            0x4d, 0x3b, 0x66, 0x10, // 1005: cmp 0x10(%r14),%r12
            0x76, 0x01, // 1009: jbe 100c  <- entry site
            0xc3, // 100b: ret
            0xe8, 0, 0, 0, 0, // 100c: call morestack
            0xeb, 0xed, // 1011: jmp 1000
        ];
        assert_eq!(find(&large, 0x1000, Abi::Go, 4).entry, Some(0x1009));
        // Any other first branch is not the stack check: no entry site (a
        // site in the prologue would see a restarted call twice).
        let other = [0x48, 0x85, 0xdb, 0x76, 0x01, 0xc3, 0xc3];
        assert_eq!(find(&other, 0x1000, Abi::Go, 4).entry, None);
        // The same compare with `jb` instead of `jbe`: not Go's check.
        let mut jb = code;
        jb[4] = 0x72;
        assert_eq!(find(&jb, 0x1000, Abi::Go, 4).entry, None);
        // ... and with another offset than g.stackguard0.
        let mut off = code;
        off[3] = 0x18;
        assert_eq!(find(&off, 0x1000, Abi::Go, 4).entry, None);
        // A tail call: no return sites at all.
        let tail = [0x85, 0xc0, 0x75, 0x01, 0xc3, 0xe9, 0, 0x10, 0, 0];
        assert!(ret_sites(&tail, 0x1000).is_empty());
    }

    #[test]
    fn garbage_and_empty_code_give_nothing() {
        assert_eq!(find(&[], 0x1000, Abi::SysV, 3), Sites::default());
        assert_eq!(
            find(&[0x0f, 0x0b, 0xff, 0xff], 0x1000, Abi::SysV, 3),
            Sites::default()
        );
        for seed in 0..200u32 {
            let bytes: Vec<u8> = (0..64u32)
                .map(|i| (seed.wrapping_mul(2_654_435_761).wrapping_add(i * 97) >> 7) as u8)
                .collect();
            let _ = find(&bytes, 0x1000, Abi::SysV, 6);
            let _ = find(&bytes, 0x1000, Abi::Go, 9);
            let _ = ret_sites(&bytes, 0x1000);
        }
    }
}
