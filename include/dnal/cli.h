/* dnal cli: the `dnal` command and its subcommands. */
#ifndef DNAL_CLI_H
#define DNAL_CLI_H

/* Runs `dnal ARGS...`; returns the process exit code (docs/design.md, "Command line"). */
int dnal_cli_main(int argc, char **argv);

/* dnal info: versions, oneDNN ISA, threads, MPI. */
int dnal_cmd_info(int argc, char **argv);
int dnal_cmd_prep(int argc, char **argv);
/* dnal search: all stages. */
int dnal_cmd_search(int argc, char **argv);
/* dnal train: the pretrain stage alone. */
int dnal_cmd_train(int argc, char **argv);
/* dnal export / eval: the compact model file. */
int dnal_cmd_export(int argc, char **argv);
int dnal_cmd_eval(int argc, char **argv);
/* dnal bench: step timing of a model on synthetic data. */
int dnal_cmd_bench(int argc, char **argv);
/* dnal profile: the latency table of a model on this CPU. */
int dnal_cmd_profile(int argc, char **argv);
/* dnal config: the resolved configuration, or every key (--list). */
int dnal_cmd_config(int argc, char **argv);

#endif
