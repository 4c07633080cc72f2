// Registration of the optimizer family's GPU kernels: every update operator of
// src/main/cpp/ops/optimizer/.
// The kernels live in optimizer_momentum.cu, optimizer_adaptive.cu, optimizer_mp.cu and
// optimizer_kiln.cu (shared pieces: optimizer_common.cuh).
#include "ops/optimizer_common.cuh"

namespace kiln {
namespace cuda {

void register_optimizer_gpu(OpRegistry& r) {
  optim::register_momentum_gpu(r);          // sgd_update, sgd_mom_update, nag_mom_update, signsgd_update, signum_update
  optim::register_adaptive_gpu(r);          // adam, rmsprop, rmspropalex, ftrl, ftml, lamb phase 1/2
  optim::register_mixed_precision_gpu(r);   // mp_sgd_update, mp_sgd_mom_update, mp_nag_mom_update, (multi_)all_finite
  optim::register_kiln_updates_gpu(r);      // _kiln_adagrad/adadelta/adamax/nadam_update
}

}  // namespace cuda
}  // namespace kiln
