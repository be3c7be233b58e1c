/* sandbox: once start-up is done (rules installed, queues, raw sockets,
 * control and metrics sockets open, privileges dropped), the daemon sets
 * no-new-privs and loads a seccomp allow-list (libseccomp), in every mode:
 * started by hand as root with a user, under the shipped unit, or in the
 * foreground as root.
 *
 * The list holds what the running daemon still does, and what the
 * children it spawns do (they inherit the filter): NFQUEUE and nftables
 * netlink, the raw RST sockets, the control and metrics sockets, epoll,
 * reading the config on reload, the state file's atomic writes, posix_spawn
 * and execve of iptables-*-restore/-save, sd_notify, logging. It leaves
 * out what only an intruder would want: ptrace, mount, namespaces
 * (unshare, setns, clone with CLONE_NEW*), module and kexec loading, bpf,
 * keyrings, chroot, mknod, io_uring, userfaultfd, process_vm_*,
 * personality, reboot, clock changes, and sockets of any family but unix,
 * inet, inet6 and netlink. Calls that only give up what a process holds
 * stay (setresuid, setgroups, capset, seccomp, prctl's NO_NEW_PRIVS and
 * CAP_AMBIENT): a child such as the health checker leaves its inherited
 * user and capabilities, and stacks its own filter, after execve.
 *
 * A system call outside the list kills the whole daemon (SIGSYS): a clear
 * crash that the unit's Restart= answers and the kernel's audit log names,
 * never a half-working daemon. SANDBOX_LOG allows and logs it instead (the
 * audit log, "type=1326 ... syscall=N"), to find what a new feature needs. */
#ifndef GK_SANDBOX_H
#define GK_SANDBOX_H

enum sandbox_mode {
	SANDBOX_KILL, /* default */
	SANDBOX_LOG,  /* gatekeeperd --sandbox=log: allowed, logged by the kernel */
};

/* Sets no-new-privs and loads the filter for every thread of the
 * process. 0, or -1 after logging why. */
int sandbox_enter(enum sandbox_mode mode);

#endif
