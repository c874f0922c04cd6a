//go:build linux

package allreduce

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// An inbox is one rank's receiving side of the shared-memory transport: a
// file in the shared-memory directory (ShmConfig.Dir), named after the job,
// the generation and the rank, holding a header page and one single-producer
// single-consumer byte ring per possible sender.
//
//	page 0              header (shmHdr* offsets below)
//	page 1 + s·stride   link of sender s: a page of counters, then LinkBytes of ring
//	after the links     the arena, when the whole generation shares the host (shm_reduce.go)
//
// The owner creates the file under a temporary name, takes an exclusive
// flock on it, fills the header and renames it into place: a file under its
// final name is always locked by a live owner or left by a dead one, and the
// kernel drops the lock when the owner's process ends however it ends — which
// is how peers tell a killed rank (the lock is free) from a slow one. Each
// sender allocates its own link's pages (fallocate) when it attaches, so a full
// tmpfs is an error at attach, never a SIGBUS at the first write.
//
// Ownership: the owner maps the whole file and unmaps it, unlinks the file and
// closes its descriptor (dropping the lock) in close. A sender maps the file
// too and unmaps it when its transport closes; it never unlinks.
const (
	shmMagic   = 0x31304d4853504c56 // "VLPSHM01" read little-endian
	shmVersion = 1

	shmHdrMagic    = 0  // uint64
	shmHdrVersion  = 8  // uint32
	shmHdrJob      = 16 // uint64: jobID
	shmHdrGen      = 24 // uint64
	shmHdrRank     = 32 // uint32
	shmHdrSize     = 36 // uint32: ranks in the generation
	shmHdrLink     = 40 // uint64: LinkBytes
	shmHdrPid      = 48 // uint32: the owner's process, for people reading the file
	shmHdrState    = 52 // uint32: shmStateOpen, shmStateClosed
	shmHdrDoorbell = 64 // uint32 futex word: bumped by senders after publishing
	shmHdrSleeping = 68 // uint32: 1 while the owner waits on the doorbell
	shmHdrArena    = 80 // uint64: ArenaBytes of the arena after the links, 0 without one

	shmLinkHead    = 0   // uint64: bytes written in all (sender)
	shmLinkTail    = 64  // uint64: bytes consumed in all (owner), its own cache line
	shmLinkSpace   = 72  // uint32 futex word: bumped by the owner after consuming
	shmLinkWaiting = 128 // uint32: 1 while the sender waits for space

	shmStateOpen   = 1
	shmStateClosed = 2
)

// shmName is the file name of rank's inbox in generation gen of job: the job's
// name made safe for a file name, its 64-bit tag (so two jobs whose names
// differ only in unsafe characters never share a file), the generation and
// the rank.
func shmName(job string, gen uint64, rank int) string {
	return fmt.Sprintf("%s-g%d-r%d", shmJobPrefix(job), gen, rank)
}

func shmJobPrefix(job string) string {
	safe := []byte(job)
	if len(safe) > 48 {
		safe = safe[:48]
	}
	for i, c := range safe {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			safe[i] = '_'
		}
	}
	return fmt.Sprintf("vlp-ring-%s-%016x", safe, jobID(job))
}

// shmFileSize is the size of an inbox of n ranks with links of link bytes
// and an arena of arena bytes (0: none).
func shmFileSize(n, link, arena int) int64 {
	return shmArenaOffset(n, link) + shmArenaSize(arena)
}

func shmArenaOffset(n, link int) int64 {
	return int64(shmPage) + int64(n)*int64(shmPage+link)
}

func shmLinkOffset(sender, link int) int {
	return shmPage + sender*(shmPage+link)
}

// shmMap is a mapped inbox file: the owner's or a sender's view of it.
type shmMap struct {
	path string
	f    *os.File
	fd   int // f's descriptor, for flock
	mem  []byte
}

func (m *shmMap) u32(off int) *uint32 { return (*uint32)(unsafe.Pointer(&m.mem[off])) }
func (m *shmMap) u64(off int) *uint64 { return (*uint64)(unsafe.Pointer(&m.mem[off])) }

// unmap releases the mapping and the descriptor (and with it the owner's lock).
func (m *shmMap) unmap() error {
	var errs []error
	if m.mem != nil {
		errs = append(errs, unix.Munmap(m.mem))
		m.mem = nil
	}
	if m.f != nil {
		errs = append(errs, m.f.Close())
		m.f = nil
	}
	return errors.Join(errs...)
}

// ownerAlive reports whether the owner of the inbox that m maps still holds
// its lock: it tries a shared lock of its own, which succeeds only once the
// owner's descriptor is closed (the owner closed its transport or died).
func (m *shmMap) ownerAlive() bool {
	err := unix.Flock(m.fd, unix.LOCK_SH|unix.LOCK_NB)
	if err == nil {
		unix.Flock(m.fd, unix.LOCK_UN)
		return false
	}
	return true
}

// checkShmDir refuses a missing shared-memory directory or one with less than
// need bytes free, naming both.
func checkShmDir(dir string, need int64) error {
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%w: the shm transport needs a shared-memory directory shared by the host's workers: %v", ErrConfig, err)
	}
	if !st.IsDir() {
		return configErr("ShmConfig.Dir %s is not a directory", dir)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		return fmt.Errorf("allreduce: shm: statfs %s: %w", dir, err)
	}
	if free := int64(fs.Bavail) * int64(fs.Bsize); free < need {
		return configErr("%s has %d MiB free, the shm transport needs %d MiB for this rank's inbox (ShmConfig.LinkBytes per sender)", dir, free>>20, (need+(1<<20)-1)>>20)
	}
	return nil
}

// createInbox makes, locks and maps rank's inbox of gen, sized for senders
// neighbours and an arena of arena bytes, and publishes it under its final
// name.
func createInbox(dir string, gen Generation, rank, link, arena, senders int) (*shmMap, error) {
	size := shmFileSize(gen.Size(), link, arena)
	if err := checkShmDir(dir, int64(shmPage)+int64(senders)*int64(shmPage+link)+shmArenaSize(arena)); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, shmName(gen.Job, gen.Number, rank))
	tmp := fmt.Sprintf("%s.tmp%d", path, os.Getpid())
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("allreduce: shm: create inbox: %w", err)
	}
	m := &shmMap{path: path, f: f, fd: int(f.Fd())}
	fail := func(err error) (*shmMap, error) {
		m.unmap()
		os.Remove(tmp)
		return nil, err
	}
	if err := unix.Flock(m.fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return fail(fmt.Errorf("allreduce: shm: lock %s: %w", tmp, err))
	}
	if err := f.Truncate(size); err != nil {
		return fail(fmt.Errorf("allreduce: shm: size %s: %w", tmp, err))
	}
	if err := unix.Fallocate(m.fd, 0, 0, shmPage); err != nil {
		return fail(fmt.Errorf("allreduce: shm: allocate %s: %w", tmp, err))
	}
	if arena > 0 {
		if err := unix.Fallocate(m.fd, 0, shmArenaOffset(gen.Size(), link), shmArenaSize(arena)); err != nil {
			return fail(fmt.Errorf("allreduce: shm: allocate the arena of %s (ShmConfig.ArenaBytes): %w", tmp, err))
		}
	}
	if m.mem, err = unix.Mmap(m.fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err != nil {
		return fail(fmt.Errorf("allreduce: shm: map %s: %w", tmp, err))
	}
	*m.u64(shmHdrJob) = jobID(gen.Job)
	*m.u64(shmHdrGen) = gen.Number
	*m.u32(shmHdrRank) = uint32(rank)
	*m.u32(shmHdrSize) = uint32(gen.Size())
	*m.u64(shmHdrLink) = uint64(link)
	*m.u64(shmHdrArena) = uint64(arena)
	*m.u32(shmHdrPid) = uint32(os.Getpid())
	*m.u32(shmHdrVersion) = shmVersion
	atomic.StoreUint32(m.u32(shmHdrState), shmStateOpen)
	atomic.StoreUint64(m.u64(shmHdrMagic), shmMagic)
	// A file of the same name is a dead owner's (the same rank of the same
	// generation, crashed and restarted): the rename replaces it.
	if err := os.Rename(tmp, path); err != nil {
		return fail(fmt.Errorf("allreduce: shm: publish inbox: %w", err))
	}
	return m, nil
}

// errInboxAbsent: the peer's inbox is not there yet, or only a dead owner's is
// (errInboxDead as well).
var errInboxAbsent = errors.New("inbox not there")

// errInboxDead: the peer's inbox is there but nobody holds it: its owner died,
// or it is a stale one a new owner has yet to replace.
var errInboxDead = errors.New("inbox of a dead owner")

// attachInbox maps rank to's inbox of gen. It returns errInboxAbsent
// (wrapped) while there is no inbox with a live owner; a mismatch of the
// header is an ErrConfig. The sender's link is allocated by allocLink.
func attachInbox(dir string, gen Generation, to, link, arena int) (*shmMap, error) {
	path := filepath.Join(dir, shmName(gen.Job, gen.Number, to))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", errInboxAbsent, path)
	}
	if err != nil {
		return nil, fmt.Errorf("allreduce: shm: open the inbox of rank %d: %w", to, err)
	}
	m := &shmMap{path: path, f: f, fd: int(f.Fd())}
	st, err := f.Stat()
	if err != nil {
		m.unmap()
		return nil, fmt.Errorf("allreduce: shm: %w", err)
	}
	if !m.ownerAlive() {
		m.unmap()
		return nil, fmt.Errorf("%w: %w: %s", errInboxAbsent, errInboxDead, path)
	}
	if want := shmFileSize(gen.Size(), link, arena); st.Size() != want {
		m.unmap()
		return nil, configErr("the inbox of rank %d (%s) has %d bytes, want %d: the ranks disagree on ShmConfig.LinkBytes, ShmConfig.ArenaBytes, the transport kind or the ring size", to, path, st.Size(), want)
	}
	if m.mem, err = unix.Mmap(m.fd, 0, int(st.Size()), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err != nil {
		m.unmap()
		return nil, fmt.Errorf("allreduce: shm: map the inbox of rank %d: %w", to, err)
	}
	if atomic.LoadUint64(m.u64(shmHdrMagic)) != shmMagic || *m.u32(shmHdrVersion) != shmVersion ||
		*m.u64(shmHdrJob) != jobID(gen.Job) || *m.u64(shmHdrGen) != gen.Number ||
		*m.u32(shmHdrRank) != uint32(to) || *m.u32(shmHdrSize) != uint32(gen.Size()) ||
		*m.u64(shmHdrLink) != uint64(link) || *m.u64(shmHdrArena) != uint64(arena) {
		m.unmap()
		return nil, configErr("%s is not the inbox of rank %d of generation %d of job %q", path, to, gen.Number, gen.Job)
	}
	return m, nil
}

// allocLink allocates sender from's link in the inbox m, so that a full
// tmpfs is an error here rather than a SIGBUS at the first write.
func (m *shmMap) allocLink(from, link int) error {
	off := shmLinkOffset(from, link)
	if err := unix.Fallocate(m.fd, 0, int64(off), int64(shmPage+link)); err != nil {
		if errors.Is(err, unix.ENOSPC) {
			return configErr("%s is full: no room for a %d MiB link (ShmConfig.LinkBytes)", filepath.Dir(m.path), link>>20)
		}
		return fmt.Errorf("allreduce: shm: allocate a link in %s: %w", m.path, err)
	}
	return nil
}

// sweepShm removes the inbox files (and half-made ones) of job's generations
// before gen whose owners are gone: those left by killed ranks, or by
// ranks that died before closing. A live owner's file is left alone.
func sweepShm(dir, job string, gen uint64) {
	prefix := shmJobPrefix(job) + "-g"
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		num, _, ok := strings.Cut(name[len(prefix):], "-r")
		g, err := strconv.ParseUint(num, 10, 64)
		if !ok || err != nil || g >= gen {
			continue
		}
		path := filepath.Join(dir, name)
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			continue
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			os.Remove(path)
		}
		f.Close()
	}
}
