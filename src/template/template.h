/*
 * template: golden-path service templates, the starting point of a new service. The CLI uses
 * them for `pave init` and `pave templates`; the portal's "Create a service" page renders one
 * into a temporary directory and imports it as the service's first commit.
 *
 * A template is a directory <root>/<name>/ holding `template.yaml` (name, description, language,
 * variables, the list of rendered files) and `files/`, the tree copied into the new service.
 * Rendering replaces {{name}}, {{team}} and {{var.KEY}} in the files the template lists under
 * `render` (and in every path); any other {{...}} is an error naming file:line. Files keep their
 * permission bits. See docs/templates.md.
 *
 * The root is the first existing directory of: $PAVE_TEMPLATES, <dir of the pave binary>/
 * ../templates, ./templates, /usr/share/pave/templates.
 *
 * Ownership: structs filled here own their strings; release them with the matching _release().
 * Threading: no shared state; functions may run on several threads at once (each on its own
 * structs). The root lookup reads $PAVE_TEMPLATES.
 */
#ifndef PAVE_TEMPLATE_H
#define PAVE_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/core.h"

#define TEMPLATE_SPEC_MAX (64 * 1024) /* template.yaml */
#define TEMPLATE_FILE_MAX (1024 * 1024) /* one file of files/ */
#define TEMPLATE_FILES_MAX 1000         /* files in one template */
#define TEMPLATE_VALUE_MAX 200          /* one variable value */

struct template_var {
    char *name;
    char *description;   /* may be NULL */
    char *default_value; /* may be NULL */
    char *pattern;       /* POSIX extended regex the value must match; may be NULL */
    bool required;
};

struct template {
    char *name;
    char *description;
    char *language;
    char *dir; /* <root>/<name> */
    struct template_var *vars;
    size_t nvars;
    char **render; /* fnmatch patterns (no flags: '*' crosses '/') of files/ paths to render */
    size_t nrender;
};

/* One output file: path relative to the service root, contents and permission bits. */
struct template_file {
    char *path;
    char *data;
    size_t len;
    int mode;
};

struct template_output {
    struct template_file *files;
    size_t n;
};

/* The values placeholders are replaced with. vals[i] is the value of t->vars[i] (NULL: use
 * the default). */
struct template_values {
    const char *name;
    const char *team;
    const char **vals;
};

/* Finds the templates root into out. On failure err says which places were tried. */
int template_root(char *out, size_t outsz, struct core_err *err);

/* Names of the templates under root (directories with a template.yaml), sorted.
 * returns: 0 and *names owned by caller (free with template_names_free). */
int template_names(const char *root, char ***names, size_t *n, struct core_err *err);
void template_names_free(char **names, size_t n);

/* Loads <root>/<name>/template.yaml. CORE_E_NOTFOUND when there is no such template;
 * CORE_E_INVAL (file:line:col in err) when template.yaml is malformed. */
int template_load(struct template *t, const char *root, const char *name, struct core_err *err);
void template_release(struct template *t);
/* Index of variable `name` in t->vars, or -1. */
int template_var_index(const struct template *t, const char *name);
/* Checks one variable value (characters, length, pattern). */
int template_value_check(const struct template_var *v, const char *value, struct core_err *err);

/* Renders the whole template in memory. Nothing is written. */
int template_render(const struct template *t, const struct template_values *v,
                   struct template_output *out, struct core_err *err);
void template_output_release(struct template_output *out);

/* Writes out into dest, which must not exist or be an empty directory. Files are written to a
 * staging directory next to dest that is renamed into place at the end, so a failure leaves
 * nothing behind. */
int template_write(const char *dest, const struct template_output *out, struct core_err *err);

/* Removes the directory tree at dir (symbolic links are removed, not followed). Best effort. */
void template_remove(const char *dir);

/* True when path does not exist or is an empty directory. */
bool template_dest_free(const char *path);

#endif
