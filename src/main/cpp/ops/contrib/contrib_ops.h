// The contrib operator family (MXNet's src/operator/contrib detection operators): one register_*
// function per file.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kiln/kernel_common.h"
#include "kiln/op.h"

namespace kiln {
namespace contrib {

void register_bounding_box(OpRegistry& r);  // bounding_box.cc: _contrib_box_iou, _contrib_box_nms, _contrib_bipartite_matching, _contrib_box_encode, _contrib_box_decode

}  // namespace contrib
}  // namespace kiln
