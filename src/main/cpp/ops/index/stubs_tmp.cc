#include "index_common.h"
namespace kiln { namespace index_ops { void register_reorder_ops(OpRegistry&){} void register_sort_ops(OpRegistry&){} } }
