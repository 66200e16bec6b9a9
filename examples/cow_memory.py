"""Copy-on-write: after fork, parent and child see the same private pages until one of them writes.

The parent maps a private anonymous page and stores 1 there. The child stores 2 at the same
address: its store faults on the write-protected page and gets a copy (do_wp_page ->
wp_page_copy), so the parent still reads 1. A MAP_SHARED page is not copied: there the
child's store is the parent's too.

    $ python examples/cow_memory.py
    child: stored 2 at the private page, reads 2
    parent: reads 1 at the same address: the child wrote to its own copy
    parent: reads 2 from the shared page: MAP_SHARED is not copied on write
"""


def main(os):
    private = os.mmap(4096, os.PROT_READ | os.PROT_WRITE, os.MAP_PRIVATE | os.MAP_ANONYMOUS)
    shared = os.mmap(4096, os.PROT_READ | os.PROT_WRITE, os.MAP_SHARED | os.MAP_ANONYMOUS)
    os.store_int(private, 1)
    os.store_int(shared, 1)
    pid = os.fork()
    if pid == 0:
        os.store_int(private, 2)
        os.store_int(shared, 2)
        print(f"child: stored 2 at the private page, reads {os.load_int(private)}")
        os._exit(0)
    os.waitpid(pid, 0)
    print(f"parent: reads {os.load_int(private)} at the same address: the child wrote to its own copy")
    print(f"parent: reads {os.load_int(shared)} from the shared page: MAP_SHARED is not copied on write")


if __name__ == "__main__":
    import sys

    import forklab

    run = forklab.run(__file__, seed=int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    sys.stdout.buffer.write(run.stdout)
