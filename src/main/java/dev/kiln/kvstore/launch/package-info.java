/**
 * Starting the ranks of a distributed job on one host: {@link dev.kiln.kvstore.launch.Launcher}
 * (library and command line), in the role of MXNet's {@code tools/launch.py --launcher local} and
 * torchrun's {@code --nproc-per-node}. It gives every rank torchrun's environment contract, which
 * {@link dev.kiln.kvstore.DistEnv} reads, streams the ranks' output prefixed by rank, stops the group
 * on the first failure and reports which rank failed, how, and what it printed last.
 */
package dev.kiln.kvstore.launch;
