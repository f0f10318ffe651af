// Model identity: the OpenSSF model-signing (OMS) manifest digest and per-tensor digests.
//
// The manifest lists every regular file of the model (a directory, or a single file) with its
// SHA-256: paths relative to the model root with '/' separators, sorted by Unicode code point
// (byte order of UTF-8), excluding any path with a component starting with ".git" and signature
// files (*.sig, *.sigstore, *.sigstore.json). Symbolic links to regular files are followed
// (Hugging Face cache snapshots are links to blobs) and listed under the link's name. The model's
// subject digest is SHA-256 over the concatenation of the raw 32-byte file digests in manifest
// order. Files are hashed in parallel, each streamed through a fixed buffer, so memory stays
// bounded whatever the model size.
#pragma once

#include <string>
#include <vector>

#include "core/sha256.h"
#include "core/status.h"
#include "model/formats/checkpoint.h"

namespace prov::model {

struct FileDigest {
  std::string name;    // relative path, '/'-separated
  std::string sha256;  // hex
  uint64_t size = 0;
};

struct Manifest {
  std::string digest;  // hex SHA-256 over the concatenated raw file digests
  std::vector<FileDigest> files;
};

struct DigestOptions {
  unsigned threads = 0;  // 0: one per core
};

// Fails with kNotFound (no such path), kInvalidArgument (a directory with no files, or a path
// that is neither file nor directory) or kIo (unreadable file).
Result<Manifest> compute_manifest(const std::string& path, const DigestOptions& options = {});

// compute_manifest in two steps, for callers that schedule the hashing themselves: the files it
// would list (sorted, with full paths and sizes; same failures), then the manifest from their
// raw SHA-256 digests in that order.
struct ManifestFile {
  std::string name;  // relative path, '/'-separated
  std::string path;  // full path
  uint64_t size = 0;
};
Result<std::vector<ManifestFile>> list_manifest_files(const std::string& path);
Manifest manifest_from(const std::vector<ManifestFile>& files, const std::vector<Digest>& digests);

// True when a relative path is excluded from the manifest.
bool manifest_excludes(const std::string& relative_path);

struct TensorDigest {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::string sha256;  // of the tensor's canonical little-endian bytes (tensor.h)
};

// Digests every tensor of a checkpoint (in parallel). Fails if a tensor's bytes are inconsistent.
Result<std::vector<TensorDigest>> compute_tensor_digests(const Checkpoint& ckpt,
                                                         const DigestOptions& options = {});

}  // namespace prov::model
