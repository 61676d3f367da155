"""Real servers for the tests: in-process (pyftpdlib, asyncssh) and Debian's
vsftpd and OpenSSH sshd, plus certificates and a fault-injecting proxy."""
