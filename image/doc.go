// Package image writes vlp's control-plane container image, with Go code and no Docker daemon.
//
// # Basics
//
// The image runs the coordinators, the chart's submit Job and its helm test: `vlp coordinator
// start`, `vlp job …`, none of which loads LibTorch. It holds one layer: the vlp binary at
// BinaryPath (built with CGO_ENABLED=0), the shared libraries it needs, /etc/passwd and
// /etc/group naming the unprivileged user it runs as (User, 65532), and an empty /tmp. Build
// returns it as a go-containerregistry v1.Image; WriteTarball writes it as a tarball that
// `docker load`, `kind load image-archive` and `crane push` read; Read reads one back.
//
// # Caveats
//
// The binary is not static: vlp loads the LibTorch shim at run time through purego, which even
// with CGO_ENABLED=0 links the dynamic loader, libc, libdl and libpthread. Libraries finds them
// in the binary's ELF headers (its interpreter and DT_NEEDED entries, and theirs) and Build copies
// them from the build machine into the image at the same paths, as a distroless base would hold
// them. The worker image, which needs CUDA and LibTorch, is built from
// helm/images/worker.Dockerfile instead.
package image
