#!/usr/bin/env python3
"""Inputs of bench/detect: Linux security logs and Sigma rule sets.

  detect_gen.py logs N OUT          N lines: syslog (sshd, sudo, cron, su, useradd, systemd) and
                                    auditd records (SYSCALL, EXECVE, PATH, PROCTITLE, USER_AUTH,
                                    CRED_ACQ), shaped like tests/data/logs
  detect_gen.py rules N DIR SAMPLES N rules in DIR: the SigmaHQ samples of SAMPLES, then generated
                                    variants (keywords, contains/startswith/endswith, re, lists,
                                    '1 of selection_*', 'all of', not-filters, cidr, |all)

Everything is seeded, so two runs write the same bytes. About one generated rule in 20 carries a
value that occurs in the logs (rare lines: one in a few thousand), so the match path runs; the
others look for things the logs do not have, as most rules of a real set do on most days.
"""
import os
import random
import shutil
import sys

USERS = ["alice", "bob", "carol", "deploy", "backup", "nagios", "postgres", "www-data", "admin",
         "jenkins", "ubuntu", "ops"]
BAD_USERS = ["test", "oracle", "guest", "pi", "ftpuser", "git", "support", "user1", "hadoop"]
HOSTS = ["web-%d" % i for i in range(1, 10)] + ["db-1", "db-2", "bastion", "ci-runner-3"]
BINS = ["ls", "cat", "grep", "ps", "ss", "curl", "systemctl", "journalctl", "python3", "tar", "cp",
        "mv", "find", "awk", "sed", "git", "docker", "id", "uname", "df", "du", "head", "tail"]
ARGS = ["-la", "/var/log/syslog", "-rf", "--version", "status", "nginx", "-h", "/etc/hosts",
        "-n", "100", "/home/alice", "-c", "x.tar.gz", "https://example.com/health", "-q"]
SUDO_CMDS = ["/usr/bin/systemctl restart nginx", "/usr/bin/apt-get update",
             "/usr/bin/journalctl -u sshd", "/bin/cat /var/log/auth.log",
             "/usr/bin/docker ps", "/usr/sbin/iptables -L"]
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def ip(r):
    if r.random() < 0.5:
        return "10.%d.%d.%d" % (r.randrange(256), r.randrange(256), r.randrange(1, 255))
    return "%d.%d.%d.%d" % (r.choice([45, 61, 89, 103, 185, 203, 218]), r.randrange(256),
                            r.randrange(256), r.randrange(1, 255))


def hexs(s):
    return s.encode().hex().upper()


def syslog_line(r, i):
    sec = i // 20
    ts = "Nov %2d %02d:%02d:%02d" % (26, sec // 3600 % 24, sec // 60 % 60, sec % 60)
    host = HOSTS[i % len(HOSTS)]
    pid = 1000 + (i * 7919) % 60000
    u = r.choice(USERS)
    k = r.randrange(1000)
    if k < 300:
        app = "sshd"
        if k < 90:
            msg = "Accepted publickey for %s from %s port %d ssh2: RSA SHA256:%x" % (
                u, ip(r), r.randrange(1024, 65535), r.getrandbits(64))
        elif k < 180:
            msg = "Failed password for invalid user %s from %s port %d ssh2" % (
                r.choice(BAD_USERS), ip(r), r.randrange(1024, 65535))
        elif k < 230:
            msg = "Connection closed by %s port %d [preauth]" % (ip(r), r.randrange(1024, 65535))
        elif k < 280:
            msg = "pam_unix(sshd:session): session opened for user %s by (uid=0)" % u
        else:
            msg = "Received disconnect from %s port %d:11: disconnected by user" % (
                ip(r), r.randrange(1024, 65535))
        if i % 4999 == 17:
            msg = "Corrupted MAC on input. [preauth]"
        elif i % 7001 == 5:
            msg = "error: kex_exchange_identification: banner line contains invalid characters"
    elif k < 450:
        app = "sudo"
        if k < 400:
            msg = "%8s : TTY=pts/%d ; PWD=/home/%s ; USER=root ; COMMAND=%s" % (
                u, r.randrange(4), u, r.choice(SUDO_CMDS))
        else:
            msg = "pam_unix(sudo:session): session opened for user root by %s(uid=1000)" % u
        if i % 6007 == 11:
            msg = ("%s : TTY=pts/1 ; PWD=/tmp ; USER=root ; "
                   "COMMAND=/usr/bin/chattr -i /etc/shadow" % u)
    elif k < 600:
        app = "CRON"
        if k < 520:
            msg = "pam_unix(cron:session): session opened for user root by (uid=0)"
        else:
            msg = "(root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)"
    elif k < 680:
        app = "su"
        msg = "pam_unix(su:session): session opened for user %s by %s(uid=1000)" % (
            r.choice(USERS), u)
    elif k < 700:
        app = "useradd"
        n = r.randrange(100000)
        gid = 0 if i % 9973 == 3 else 1000 + n % 500
        msg = "new user: name=svc%d, UID=%d, GID=%d, home=/home/svc%d, shell=/bin/bash" % (
            n, 1000 + n % 500, gid, n)
    elif k < 900:
        app = "systemd"
        msg = r.choice(["Started Session %d of user %s." % (r.randrange(9000), u),
                        "Starting Daily apt download activities...",
                        "logrotate.service: Succeeded.",
                        "Started Cleanup of Temporary Directories."])
    else:
        app = "kernel"
        msg = "[UFW BLOCK] IN=eth0 OUT= SRC=%s DST=10.0.0.4 LEN=60 PROTO=TCP SPT=%d DPT=22" % (
            ip(r), r.randrange(1024, 65535))
        return "%s %s kernel: %s" % (ts, host, msg)
    return "%s %s %s[%d]: %s" % (ts, host, app, pid, msg)


def audit_line(r, i):
    t = "%d.%03d:%d" % (1795000000 + i // 50, i % 1000, 100000 + i)
    u = r.choice(USERS)
    pid = 2000 + (i * 104729) % 60000
    k = r.randrange(100)
    if k < 30:
        b = r.choice(BINS)
        exe = "/usr/bin/" + b
        if i % 3001 == 7:
            exe = "/tmp/.cache/kworkerd"
        return ('type=SYSCALL msg=audit(%s): arch=c000003e syscall=59 success=yes exit=0 '
                'a0=55d0c3b0 a1=55d0c3c8 a2=55d0c3e0 a3=8 items=2 ppid=%d pid=%d auid=1000 uid=0 '
                'gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=3 comm="%s" '
                'exe="%s" subj=unconfined key="exec"' % (t, pid - 1, pid, b, exe))
    if k < 60:
        b = r.choice(BINS)
        args = [b] + r.sample(ARGS, r.randrange(0, 3))
        if i % 4001 == 9:
            args = ["chattr", "-i", "/etc/resolv.conf"]
        elif i % 5003 == 13:
            args = ["rm", "-rf", "/var/log/secure"]
        enc = []
        for n, a in enumerate(args):
            enc.append('a%d=%s' % (n, hexs(a) if " " in a or r.random() < 0.05 else '"%s"' % a))
        return "type=EXECVE msg=audit(%s): argc=%d %s" % (t, len(args), " ".join(enc))
    if k < 75:
        return ('type=PATH msg=audit(%s): item=0 name="/usr/bin/%s" inode=%d dev=fd:00 '
                'mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL' % (
                    t, r.choice(BINS), r.randrange(1 << 20)))
    if k < 85:
        cmd = "%s %s" % (r.choice(BINS), r.choice(ARGS))
        return "type=PROCTITLE msg=audit(%s): proctitle=%s" % (t, hexs(cmd.replace(" ", "\0")))
    typ = "USER_AUTH" if k < 93 else "CRED_ACQ"
    return ("type=%s msg=audit(%s): pid=%d uid=0 auid=4294967295 ses=4294967295 "
            "subj=system_u:system_r:sshd_t:s0-s0:c0.c1023 msg='op=PAM:%s grantors=pam_unix "
            "acct=\"%s\" exe=\"/usr/sbin/sshd\" hostname=%s addr=%s terminal=ssh res=success'" % (
                typ, t, pid, "authentication" if typ == "USER_AUTH" else "setcred", u, ip(r),
                ip(r), ))


def logs(n, out):
    r = random.Random(1)
    with open(out, "w") as f:
        for i in range(n):
            f.write((audit_line(r, i) if i % 10 < 3 else syslog_line(r, i)) + "\n")


# ---- rules ------------------------------------------------------------------------------------

WORDS = ["agent", "beacon", "implant", "stager", "loader", "dropper", "shell", "tunnel", "proxy",
         "miner", "xmrig", "kinsing", "mirai", "tsunami", "rootkit", "keylog", "exfil", "socat",
         "chisel", "ngrok", "frp", "gost", "pspy", "linpeas", "lazagne", "mimipenguin", "hydra",
         "masscan", "zmap", "nmap", "sqlmap", "nikto", "responder", "impacket", "bloodhound"]
DIRS = ["/dev/shm/", "/var/tmp/.", "/run/user/0/.", "/tmp/.X11-unix/.", "/usr/lib/.cache/",
        "/opt/.local/", "/var/lib/docker/tmp/.", "/boot/.", "/lib/modules/.tmp/"]
PHRASES = ["invalid format of public key", "bad packet length", "padding error in packet",
           "message authentication code incorrect", "protocol version mismatch",
           "buffer overflow in channel", "deprecated cipher negotiated", "host key mismatch for",
           "PAM service denied", "maximum authentication attempts exceeded for root",
           "Bad protocol version identification", "Did not receive identification string from",
           "Unable to negotiate with", "no matching key exchange method found",
           "subsystem request for sftp by user root"]
# values that do occur in the generated logs (rare lines): the matching share of the rules
HITS = [
    ("sshd", None, ["Corrupted MAC on input"]),
    ("sshd", None, ["kex_exchange_identification: banner line contains invalid"]),
    ("sudo", None, ["COMMAND=/usr/bin/chattr -i"]),
    ("auditd", "exe|startswith", ["/tmp/.cache/"]),
    ("auditd", "a0", ["chattr"]),
    ("useradd", None, ["GID=0,"]),
]


def q(s):
    return "'" + s.replace("'", "''") + "'"


def gen_rule(r, i):
    """One rule as YAML text; template by i, values by r."""
    w = r.sample(WORDS, 4)
    t = i % 10
    hit = HITS[(i // 20) % len(HITS)] if i % 20 == 7 else None
    head = "title: Generated rule %d (%s)\nid: 00000000-0000-4000-8000-%012d\nstatus: test\n" % (
        i, w[0], i)
    level = ["low", "medium", "high", "critical", "informational"][i % 5]
    if hit:
        svc, field, vals = hit
        if svc == "auditd":
            sel = "        type: %s\n        %s:\n%s" % (
                "'SYSCALL'" if field.startswith("exe") else "'EXECVE'", field,
                "".join("            - %s\n" % q(v) for v in vals + ["/nonexistent/%s" % w[1]]))
            return (head + "logsource:\n    product: linux\n    service: auditd\n"
                    "detection:\n    selection:\n" + sel + "    condition: selection\nlevel: %s\n" %
                    level)
        kw = "".join("        - %s\n" % q(v) for v in vals + ["%s %s" % (w[1], w[2])])
        service = "auth" if svc == "useradd" else svc
        return (head + "logsource:\n    product: linux\n    service: %s\n" % service +
                "detection:\n    keywords:\n" + kw + "    condition: keywords\nlevel: %s\n" % level)
    if t == 0:  # sshd keywords, a list of phrases (like lnx_sshd_susp_ssh)
        ph = r.sample(PHRASES, 3)
        kw = "".join("        - %s\n" % q("%s %s" % (p, w[k % 4])) for k, p in enumerate(ph))
        return (head + "logsource:\n    product: linux\n    service: sshd\ndetection:\n"
                "    keywords:\n" + kw + "    condition: keywords\nlevel: %s\n" % level)
    if t == 1:  # auditd EXECVE, binary list and an argument (like chattr / data_compressed)
        return (head + "logsource:\n    product: linux\n    service: auditd\ndetection:\n"
                "    selection1:\n        type: 'EXECVE'\n        a0:\n%s"
                "    selection2:\n        type: 'EXECVE'\n        a0|endswith: %s\n"
                "        a1|contains: '--%s'\n"
                "    condition: 1 of selection*\nlevel: %s\n" % (
                    "".join("            - %s\n" % q(x) for x in w[:3]), q("/" + w[3]), w[1],
                    level))
    if t == 2:  # auditd SYSCALL exe in suspicious folders (like susp_exe_folders)
        return (head + "logsource:\n    product: linux\n    service: auditd\ndetection:\n"
                "    selection:\n        type: 'SYSCALL'\n        exe|startswith:\n%s"
                "    filter:\n        comm: %s\n"
                "    condition: selection and not filter\nlevel: %s\n" % (
                    "".join("            - %s\n" % q(d + w[k]) for k, d in
                            enumerate(r.sample(DIRS, 3))), q(w[3]), level))
    if t == 3:  # process_creation: Image endswith + CommandLine contains (like awk_shell_spawn)
        return (head + "logsource:\n    product: linux\n    category: process_creation\n"
                "detection:\n    selection_img:\n        Image|endswith:\n%s"
                "    selection_cli:\n        CommandLine|contains:\n%s"
                "    condition: all of selection_*\nlevel: %s\n" % (
                    "".join("            - %s\n" % q("/" + x) for x in w[:2]),
                    "".join("            - %s\n" % q("--%s=" % x) for x in w[2:]), level))
    if t == 4:  # syslog keywords with a regular expression
        return (head + "logsource:\n    product: linux\n    service: syslog\ndetection:\n"
                "    selection:\n        '|re': '%s(ed|ing)? (from|to) [0-9]+\\.[0-9]+'\n"
                "    condition: selection\nlevel: %s\n" % (w[0], level))
    if t == 5:  # auth: sudo commands, |all (two words in one line)
        return (head + "logsource:\n    product: linux\n    service: sudo\ndetection:\n"
                "    selection:\n        '|all':\n            - 'COMMAND='\n            - %s\n"
                "    condition: selection\nlevel: %s\n" % (q("/usr/bin/" + w[0]), level))
    if t == 6:  # auditd logins from a network (cidr) with a user list
        net = "%d.%d.0.0/16" % (r.choice([192, 172, 100]), r.randrange(256))
        return (head + "logsource:\n    product: linux\n    service: auditd\ndetection:\n"
                "    selection_src:\n        type: 'USER_AUTH'\n        addr|cidr: %s\n"
                "    selection_user:\n        acct|startswith:\n%s"
                "    condition: all of selection_*\nlevel: %s\n" % (
                    q(net), "".join("            - %s\n" % q(x) for x in w[:2]), level))
    if t == 7:  # cron: keywords with startswith on the message
        return (head + "logsource:\n    product: linux\n    service: cron\ndetection:\n"
                "    selection:\n        message|contains:\n%s"
                "    condition: selection\nlevel: %s\n" % (
                    "".join("            - %s\n" % q("CMD (/tmp/%s" % x) for x in w[:3]), level))
    if t == 8:  # any linux source: clear-logs style keywords with a not-filter
        return (head + "logsource:\n    product: linux\ndetection:\n    selection:\n%s"
                "    falsepositives:\n        - '/%s.'\n"
                "    condition: selection and not falsepositives\nlevel: %s\n" % (
                    "".join("        - %s\n" % q("%s /var/log/%s" % (c, w[0])) for c in
                            ["rm", "rm -rf", "shred -u", "truncate -s0"]), w[1], level))
    # t == 9: process_creation, command line regex and an image list, 1 of
    return (head + "logsource:\n    product: linux\n    category: process_creation\n"
            "detection:\n    sel_re:\n        CommandLine|re: '(curl|wget) .*%s\\.(sh|py)'\n"
            "    sel_img:\n        Image|endswith: %s\n        CommandLine|contains|all:\n"
            "            - '-o'\n            - %s\n"
            "    condition: 1 of sel_*\nlevel: %s\n" % (w[0], q("/" + w[1]), q(w[2]), level))


def rules(n, out, samples):
    r = random.Random(2)
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    names = sorted(x for x in os.listdir(samples) if x.endswith(".yml"))
    for x in names[:n]:
        shutil.copy(os.path.join(samples, x), os.path.join(out, x))
    for i in range(n - min(n, len(names))):
        with open(os.path.join(out, "gen_%05d.yml" % i), "w") as f:
            f.write(gen_rule(r, i))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "logs":
        logs(int(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) == 5 and sys.argv[1] == "rules":
        rules(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)
