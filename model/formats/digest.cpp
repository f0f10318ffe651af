#include "model/formats/digest.h"

#include <algorithm>
#include <filesystem>
#include <mutex>

#include "core/sha256.h"
#include "core/thread_pool.h"

namespace fs = std::filesystem;

namespace prov::model {

bool manifest_excludes(const std::string& rel) {
  size_t start = 0;
  while (start <= rel.size()) {
    size_t end = rel.find('/', start);
    if (end == std::string::npos) end = rel.size();
    if (rel.compare(start, 4, ".git") == 0) return true;
    start = end + 1;
  }
  auto ends = [&](const std::string& suf) {
    return rel.size() >= suf.size() && rel.compare(rel.size() - suf.size(), suf.size(), suf) == 0;
  };
  return ends(".sig") || ends(".sigstore") || ends(".sigstore.json");
}

Result<std::vector<ManifestFile>> list_manifest_files(const std::string& path) {
  std::error_code ec;
  auto st = fs::status(path, ec);
  if (ec || !fs::exists(st)) return not_found(path + ": no such file or directory");
  std::vector<std::pair<std::string, std::string>> files;  // (relative name, full path)
  if (fs::is_regular_file(st)) {
    files.emplace_back(fs::path(path).filename().string(), path);
  } else if (fs::is_directory(st)) {
    fs::recursive_directory_iterator it(path, fs::directory_options::none, ec), end;
    if (ec) return io_error(path + ": cannot list: " + ec.message());
    for (; it != end; it.increment(ec)) {
      if (ec) return io_error(path + ": cannot list: " + ec.message());
      std::string rel = fs::relative(it->path(), path, ec).generic_string();
      if (manifest_excludes(rel)) {
        if (it->is_directory(ec)) it.disable_recursion_pending();
        continue;
      }
      // What the entry is, following symbolic links (a Hugging Face cache links to its blobs).
      const fs::file_status target = it->status(ec);
      if (fs::is_directory(target)) continue;
      if (!fs::is_regular_file(target)) {
        // A device, FIFO, socket or dangling link would be read as something else than a file's
        // bytes (or not at all): the identity would leave it out silently.
        return invalid_argument(
            it->path().string() + ": not a regular file (" +
            (fs::exists(target) ? "a device, FIFO or socket" : "a link to nothing") +
            "); a model folder holds regular files only");
      }
      files.emplace_back(rel, it->path().string());
    }
    if (files.empty()) return invalid_argument(path + ": the directory holds no files to digest");
  } else {
    return invalid_argument(path + ": neither a regular file nor a directory");
  }
  std::sort(files.begin(), files.end());  // byte order of UTF-8 == code point order
  std::vector<ManifestFile> out;
  for (auto& [rel, full] : files) {
    std::error_code fec;
    const uint64_t size = fs::file_size(full, fec);
    out.push_back({std::move(rel), std::move(full), fec ? 0 : size});
  }
  return out;
}

Manifest manifest_from(const std::vector<ManifestFile>& files, const std::vector<Digest>& digests) {
  Manifest m;
  Sha256 all;
  for (size_t i = 0; i < files.size() && i < digests.size(); ++i) {
    m.files.push_back({files[i].name, to_hex(digests[i]), files[i].size});
    all.update(digests[i].data(), digests[i].size());
  }
  m.digest = to_hex(all.finish());
  return m;
}

Result<Manifest> compute_manifest(const std::string& path, const DigestOptions& options) {
  PROV_ASSIGN_OR_RETURN(std::vector<ManifestFile> files, list_manifest_files(path));
  std::vector<Status> errors(files.size());
  std::vector<Digest> raw(files.size());
  parallel_for(files.size(), options.threads, [&](size_t i) {
    auto d = sha256_file(files[i].path);
    if (!d.is_ok()) {
      errors[i] = d.status();
      return;
    }
    raw[i] = *d;
  });
  for (const Status& s : errors) PROV_RETURN_IF_ERROR(s);
  return manifest_from(files, raw);
}

Result<std::vector<TensorDigest>> compute_tensor_digests(const Checkpoint& ckpt,
                                                         const DigestOptions& options) {
  std::vector<TensorDigest> out(ckpt.tensors.size());
  std::vector<Status> errors(ckpt.tensors.size());
  parallel_for(ckpt.tensors.size(), options.threads, [&](size_t i) {
    const TensorRef& t = ckpt.tensors[i];
    auto d = tensor_digest(t);
    if (!d.is_ok()) {
      errors[i] = d.status();
      return;
    }
    out[i] = TensorDigest{t.name, dtype_name(t.dtype), t.shape, *d};
  });
  for (const Status& s : errors) PROV_RETURN_IF_ERROR(s);
  return out;
}

}  // namespace prov::model
