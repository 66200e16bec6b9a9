"""An installed program for the exec examples: ``hello(os, argv)`` prints its arguments and exits 0."""


def main(os, argv):
    os.write(1, b"hello from %s, pid %d: %s\n" % (argv[0].encode(), os.getpid(), " ".join(argv[1:]).encode()))
    return 0
