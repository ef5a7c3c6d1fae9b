/* main.c - the entry point of the `dojo` command: global options and the
 * dispatch to subcommands (`dojo train`, `dojo eval`, `dojo compare`,
 * `dojo cfloat ...`, `dojo bench ...`).
 *
 * Conventions for every subcommand (see cli.h): usage on stdout with exit 0
 * for --help, one line `dojo: <command>: <message>` on stderr and exit 2
 * for a bad command line, exit 1 for bad input data. */
#include <string.h>

#include "cli/cli.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    void (*usage)(FILE *fp);
    const char *summary;
} command;

static const command g_commands[] = {
    {"train", dj_cmd_train, dj_train_usage, "train a model from a JSON spec"},
    {"eval", dj_cmd_eval, dj_eval_usage, "evaluate a checkpoint on the test split"},
    {"compare", dj_cmd_compare, dj_compare_usage,
     "train under several precision policies and seeds; report"},
    {"cfloat", dj_cmd_cfloat, dj_cfloat_usage, "number formats: encode, decode, table, info"},
    {"bench", dj_cmd_bench, dj_bench_usage, "benchmarks (dojo bench cfloat)"},
};

#define N_COMMANDS (sizeof g_commands / sizeof g_commands[0])

static void usage(FILE *fp)
{
    fputs("usage: dojo COMMAND [ARGS...]\n"
          "       dojo --help | help [COMMAND]\n"
          "       dojo --version\n"
          "\n"
          "Dojo: neural-network training in Tesla's configurable floating-point\n"
          "formats.\n"
          "\n"
          "commands:\n",
          fp);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(fp, "  %-8s %s\n", g_commands[i].name, g_commands[i].summary);
    fputs("\n'dojo COMMAND --help' describes a command.\n", fp);
}

static const command *find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(name, g_commands[i].name) == 0)
            return &g_commands[i];
    return NULL;
}

static int unknown_command(const char *name)
{
    char q[128];
    dj_cli_err(NULL, "unknown command %s (try 'dojo --help')",
               dj_cli_quote(name, strlen(name), 40, q, sizeof q));
    return DJ_EXIT_USAGE;
}

int main(int argc, char **argv)
{
    dj_cli_set_program(argv[0]);
    if (argc < 2) {
        usage(stderr);
        return DJ_EXIT_USAGE;
    }
    const char *a = argv[1];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0 || strcmp(a, "help") == 0) {
        if (argc == 2) {
            usage(stdout);
            return DJ_EXIT_OK;
        }
        const command *c = find_command(argv[2]);
        if (!c)
            return unknown_command(argv[2]);
        if (argc > 3) {
            dj_cli_err("help", "unexpected argument '%s'", argv[3]);
            return DJ_EXIT_USAGE;
        }
        c->usage(stdout);
        return DJ_EXIT_OK;
    }
    if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
        if (argc > 2) {
            dj_cli_err(NULL, "unexpected argument '%s' after --version", argv[2]);
            return DJ_EXIT_USAGE;
        }
        printf("dojo %s\n", DJ_VERSION_STRING);
        return fflush(stdout) == 0 ? DJ_EXIT_OK : DJ_EXIT_DATA;
    }
    const command *c = find_command(a);
    if (!c)
        return unknown_command(a);
    int rc = c->run(argc - 1, argv + 1);
    if (fflush(stdout) != 0 && rc == DJ_EXIT_OK) {
        dj_cli_err(c->name, "cannot write the output");
        rc = DJ_EXIT_DATA;
    }
    return rc;
}
