// The version of prov written into reports, signatures and fingerprints.
#pragma once

namespace prov {

inline constexpr char kProvVersion[] = "0.1.0";

}  // namespace prov
