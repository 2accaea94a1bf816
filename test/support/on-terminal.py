"""Runs a command (argv, no shell) on a pseudo-terminal of 160 columns, as an operator's
terminal, and copies everything it draws there to stdout; exits with the command's status.
The CLI sees a TTY on stdin, stdout and stderr, so it draws progress bars."""
import fcntl
import os
import struct
import subprocess
import sys
import termios

controller, terminal = os.openpty()
fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
child = subprocess.Popen(sys.argv[1:], stdin=terminal, stdout=terminal, stderr=terminal)
os.close(terminal)
out = sys.stdout.buffer
while True:
    try:
        data = os.read(controller, 65536)
    except OSError:  # EIO: every writer closed the terminal
        break
    if not data:
        break
    out.write(data)
    out.flush()
sys.exit(child.wait())
