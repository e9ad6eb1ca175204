/* Golden-path templates: finding, loading template.yaml, rendering and writing (template.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "template/template.h"

/* ---- the templates root ------------------------------------------------------------------- */

static bool is_dir(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

int template_root(char *out, size_t outsz, struct core_err *err)
{
    const char *env = getenv("PAVE_TEMPLATES");
    if (env && *env) {
        if (!is_dir(env))
            return core_err_set(err, CORE_E_NOTFOUND,
                                "PAVE_TEMPLATES is '%s', which is not a directory", env);
        snprintf(out, outsz, "%s", env);
        return 0;
    }
    char exe[PATH_MAX];
    char cand[3][PATH_MAX + 32];
    size_t ncand = 0;
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = 0;
        snprintf(cand[ncand++], sizeof(cand[0]), "%s/../templates", dirname(exe));
    }
    snprintf(cand[ncand++], sizeof(cand[0]), "templates");
    snprintf(cand[ncand++], sizeof(cand[0]), "/usr/share/pave/templates");
    for (size_t i = 0; i < ncand; i++) {
        if (is_dir(cand[i])) {
            char real[PATH_MAX];
            snprintf(out, outsz, "%s", realpath(cand[i], real) ? real : cand[i]);
            return 0;
        }
    }
    return core_err_set(err, CORE_E_NOTFOUND,
                        "no templates directory found (tried $PAVE_TEMPLATES, %s, ./templates, "
                        "/usr/share/pave/templates)",
                        ncand == 3 ? cand[0] : "<binary dir>/../templates");
}

int template_names(const char *root, char ***names, size_t *n, struct core_err *err)
{
    *names = NULL;
    *n = 0;
    struct dirent **ents = NULL;
    int m = scandir(root, &ents, NULL, alphasort);
    if (m < 0)
        return core_err_set(err, CORE_E_IO, "cannot list '%s': %s", root, strerror(errno));
    int rc = 0;
    *names = core_calloc((size_t)m + 1, sizeof(char *));
    if (!*names)
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
    for (int i = 0; i < m; i++) {
        char spec[PATH_MAX];
        snprintf(spec, sizeof(spec), "%s/%s/template.yaml", root, ents[i]->d_name);
        if (!rc && ents[i]->d_name[0] != '.' && access(spec, R_OK) == 0) {
            char *s = core_strdup(ents[i]->d_name);
            if (!s)
                rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
            else
                (*names)[(*n)++] = s;
        }
        free(ents[i]);
    }
    free(ents);
    if (rc) {
        template_names_free(*names, *n);
        *names = NULL;
        *n = 0;
    }
    return rc;
}

void template_names_free(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        core_free(names[i]);
    core_free(names);
}

/* ---- template.yaml ------------------------------------------------------------------------ */

#define AT(file, node) (file), (node)->line, (node)->col

static int bad_key(const char *file, const struct core_node *map, size_t i,
                   const char *const *known, struct core_err *err)
{
    const char *hint = core_did_you_mean(map->keys[i], known);
    const struct core_node *k = map->key_nodes[i];
    if (hint)
        return core_err_set(err, CORE_E_INVAL, "%s:%d:%d: unknown key '%s'; did you mean '%s'?",
                            AT(file, k), map->keys[i], hint);
    return core_err_set(err, CORE_E_INVAL, "%s:%d:%d: unknown key '%s'", AT(file, k),
                        map->keys[i]);
}

/* A string scalar (not null) copied to *out. */
static int get_str(const char *file, const struct core_node *n, const char *what, char **out,
                   struct core_err *err)
{
    if (n->kind != CORE_NODE_SCALAR || core_scalar_is_null(n))
        return core_err_set(err, CORE_E_INVAL, "%s:%d:%d: '%s' must be a string", AT(file, n),
                            what);
    core_free(*out);
    *out = core_strdup(n->value);
    return *out ? 0 : core_err_set(err, CORE_E_NOMEM, "out of memory");
}

static bool var_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63 || s[0] < 'a' || s[0] > 'z')
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

static int load_var(const char *file, const struct core_node *n, struct template_var *v,
                    struct core_err *err)
{
    static const char *const known[] = {"name", "description", "default", "required", "pattern",
                                        NULL};
    if (n->kind != CORE_NODE_MAP)
        return core_err_set(err, CORE_E_INVAL,
                            "%s:%d:%d: each variable is a map with name, description, default, "
                            "required",
                            AT(file, n));
    int rc = 0;
    for (size_t i = 0; i < n->n && !rc; i++) {
        const char *k = n->keys[i];
        const struct core_node *val = n->items[i];
        if (strcmp(k, "name") == 0)
            rc = get_str(file, val, "name", &v->name, err);
        else if (strcmp(k, "description") == 0)
            rc = get_str(file, val, "description", &v->description, err);
        else if (strcmp(k, "default") == 0)
            rc = get_str(file, val, "default", &v->default_value, err);
        else if (strcmp(k, "pattern") == 0)
            rc = get_str(file, val, "pattern", &v->pattern, err);
        else if (strcmp(k, "required") == 0) {
            if (!core_scalar_is_bool(val, &v->required))
                rc = core_err_set(err, CORE_E_INVAL, "%s:%d:%d: 'required' must be true or false",
                                  AT(file, val));
        } else
            rc = bad_key(file, n, i, known, err);
    }
    if (rc)
        return rc;
    if (!v->name)
        return core_err_set(err, CORE_E_INVAL, "%s:%d:%d: variable without a 'name'",
                            AT(file, n));
    if (!var_name_ok(v->name))
        return core_err_set(err, CORE_E_INVAL,
                            "%s:%d:%d: bad variable name '%s' (1-63 of a-z, 0-9, '_', starting "
                            "with a letter)",
                            AT(file, n), v->name);
    if (v->pattern) {
        regex_t re;
        if (regcomp(&re, v->pattern, REG_EXTENDED | REG_NOSUB) != 0)
            return core_err_set(err, CORE_E_INVAL,
                                "%s:%d:%d: variable '%s': bad pattern '%s' (POSIX extended regex)",
                                AT(file, n), v->name, v->pattern);
        regfree(&re);
    }
    return 0;
}

static int load_spec(struct template *t, const char *file, const struct core_node *root,
                     struct core_err *err)
{
    static const char *const known[] = {"name", "description", "language", "variables", "render",
                                        NULL};
    if (!root || root->kind != CORE_NODE_MAP)
        return core_err_set(err, CORE_E_INVAL, "%s: must be a map with name, description, "
                                               "language, variables and render", file);
    int rc = 0;
    for (size_t i = 0; i < root->n && !rc; i++) {
        const char *k = root->keys[i];
        const struct core_node *val = root->items[i];
        if (strcmp(k, "name") == 0) {
            char *name = NULL;
            rc = get_str(file, val, "name", &name, err);
            if (!rc && strcmp(name, t->name) != 0)
                rc = core_err_set(err, CORE_E_INVAL,
                                  "%s:%d:%d: name '%s' differs from the directory name '%s'",
                                  AT(file, val), name, t->name);
            core_free(name);
        } else if (strcmp(k, "description") == 0) {
            rc = get_str(file, val, "description", &t->description, err);
        } else if (strcmp(k, "language") == 0) {
            rc = get_str(file, val, "language", &t->language, err);
        } else if (strcmp(k, "variables") == 0 || strcmp(k, "render") == 0) {
            bool vars = k[0] == 'v';
            if (val->kind != CORE_NODE_SEQ)
                return core_err_set(err, CORE_E_INVAL, "%s:%d:%d: '%s' must be a list",
                                    AT(file, val), k);
            if (vars) {
                t->vars = core_calloc(val->n + 1, sizeof(*t->vars));
                if (!t->vars)
                    return core_err_set(err, CORE_E_NOMEM, "out of memory");
                for (size_t j = 0; j < val->n && !rc; j++) {
                    rc = load_var(file, val->items[j], &t->vars[j], err);
                    t->nvars = j + 1;
                    for (size_t p = 0; !rc && p < j; p++)
                        if (strcmp(t->vars[p].name, t->vars[j].name) == 0)
                            rc = core_err_set(err, CORE_E_INVAL,
                                              "%s:%d:%d: variable '%s' is declared twice",
                                              AT(file, val->items[j]), t->vars[j].name);
                }
            } else {
                t->render = core_calloc(val->n + 1, sizeof(char *));
                if (!t->render)
                    return core_err_set(err, CORE_E_NOMEM, "out of memory");
                for (size_t j = 0; j < val->n && !rc; j++) {
                    rc = get_str(file, val->items[j], "render[]", &t->render[j], err);
                    t->nrender = j + 1;
                }
            }
        } else {
            rc = bad_key(file, root, i, known, err);
        }
    }
    if (!rc && !t->description)
        rc = core_err_set(err, CORE_E_INVAL, "%s: 'description' is required", file);
    return rc;
}

int template_load(struct template *t, const char *root, const char *name, struct core_err *err)
{
    memset(t, 0, sizeof(*t));
    if (!core_is_dns_label(name))
        return core_err_set(err, CORE_E_NOTFOUND, "no template '%s'", name);
    struct core_buf path;
    core_buf_init(&path, 0);
    char *text = NULL;
    size_t len = 0;
    struct core_doc doc = {0};
    int rc = 0;
    t->name = core_strdup(name);
    if (!t->name || core_buf_addf(&path, "%s/%s", root, name)) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    t->dir = core_strdup(path.data);
    if (!t->dir || core_buf_adds(&path, "/template.yaml")) {
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
        goto out;
    }
    rc = core_file_read(path.data, TEMPLATE_SPEC_MAX, &text, &len, err);
    if (rc == CORE_E_NOTFOUND) {
        rc = core_err_set(err, CORE_E_NOTFOUND, "no template '%s' in %s", name, root);
        goto out;
    }
    if (rc)
        goto out;
    rc = core_doc_parse(&doc, path.data, text, len, err);
    if (rc)
        goto out;
    rc = load_spec(t, path.data, doc.root, err);
    core_doc_release(&doc);
out:
    core_free(text);
    core_buf_release(&path);
    if (rc)
        template_release(t);
    return rc;
}

void template_release(struct template *t)
{
    for (size_t i = 0; i < t->nvars; i++) {
        core_free(t->vars[i].name);
        core_free(t->vars[i].description);
        core_free(t->vars[i].default_value);
        core_free(t->vars[i].pattern);
    }
    core_free(t->vars);
    for (size_t i = 0; i < t->nrender; i++)
        core_free(t->render[i]);
    core_free(t->render);
    core_free(t->name);
    core_free(t->description);
    core_free(t->language);
    core_free(t->dir);
    memset(t, 0, sizeof(*t));
}

int template_var_index(const struct template *t, const char *name)
{
    for (size_t i = 0; i < t->nvars; i++)
        if (strcmp(t->vars[i].name, name) == 0)
            return (int)i;
    return -1;
}

int template_value_check(const struct template_var *v, const char *value, struct core_err *err)
{
    size_t n = strlen(value);
    if (n > TEMPLATE_VALUE_MAX)
        return core_err_set(err, CORE_E_INVAL, "variable '%s': value longer than %d characters",
                            v->name, TEMPLATE_VALUE_MAX);
    if (!core_utf8_valid(value, n))
        return core_err_set(err, CORE_E_INVAL, "variable '%s': value is not valid UTF-8",
                            v->name);
    /* Values land in YAML strings, C and Python string literals and shell scripts: keep out the
     * characters that would need a different escape in each. */
    for (const char *p = value; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f || strchr("\"\\`$", c))
            return core_err_set(err, CORE_E_INVAL,
                                "variable '%s': value may not contain control characters, quotes, "
                                "backslashes, '`' or '$'",
                                v->name);
    }
    if (strstr(value, "{{") || strstr(value, "}}"))
        return core_err_set(err, CORE_E_INVAL, "variable '%s': value may not contain '{{' or '}}'",
                            v->name);
    if (v->pattern) {
        regex_t re;
        if (regcomp(&re, v->pattern, REG_EXTENDED | REG_NOSUB) != 0)
            return core_err_set(err, CORE_E_INVAL, "variable '%s': bad pattern", v->name);
        int m = regexec(&re, value, 0, NULL, 0);
        regfree(&re);
        if (m != 0)
            return core_err_set(err, CORE_E_INVAL, "variable '%s': value '%s' does not match %s",
                                v->name, value, v->pattern);
    }
    return 0;
}

/* ---- rendering ---------------------------------------------------------------------------- */

struct walk {
    const struct template *t;
    const struct template_values *v;
    struct template_output *out;
    size_t cap;
    struct core_buf rel; /* path under files/ of the current entry */
};

/* Replaces placeholders in text into dst. `file` names the source in errors. */
static int render_text(const struct walk *w, const char *file, const char *text, size_t len,
                       struct core_buf *dst, struct core_err *err)
{
    int line = 1;
    size_t i = 0;
    while (i < len) {
        const char *open = NULL;
        for (size_t j = i; j + 1 < len; j++) {
            if (text[j] == '{' && text[j + 1] == '{') {
                open = text + j;
                break;
            }
        }
        size_t upto = open ? (size_t)(open - text) : len;
        for (size_t j = i; j < upto; j++)
            line += text[j] == '\n';
        if (core_buf_add(dst, text + i, upto - i))
            return core_err_set(err, CORE_E_NOMEM, "out of memory");
        if (!open)
            break;
        size_t s = upto + 2, e = s;
        while (e + 1 < len && !(text[e] == '}' && text[e + 1] == '}') && text[e] != '\n')
            e++;
        if (e + 1 >= len || text[e] == '\n')
            return core_err_set(err, CORE_E_INVAL, "%s:%d: unterminated placeholder '{{'", file,
                                line);
        size_t a = s, b = e;
        while (a < b && (text[a] == ' ' || text[a] == '\t'))
            a++;
        while (b > a && (text[b - 1] == ' ' || text[b - 1] == '\t'))
            b--;
        char key[128];
        if (b - a >= sizeof(key))
            return core_err_set(err, CORE_E_INVAL, "%s:%d: unknown placeholder '{{%.40s...}}'",
                                file, line, text + a);
        memcpy(key, text + a, b - a);
        key[b - a] = 0;
        const char *val = NULL;
        if (strcmp(key, "name") == 0) {
            val = w->v->name;
        } else if (strcmp(key, "team") == 0) {
            val = w->v->team;
        } else if (strncmp(key, "var.", 4) == 0) {
            int k = template_var_index(w->t, key + 4);
            if (k >= 0)
                val = w->v->vals[k] ? w->v->vals[k] : w->t->vars[k].default_value;
            if (k >= 0 && !val)
                return core_err_set(err, CORE_E_INVAL, "%s:%d: variable '%s' has no value", file,
                                    line, key + 4);
        }
        if (!val) {
            if (strncmp(key, "var.", 4) == 0)
                return core_err_set(err, CORE_E_INVAL,
                                    "%s:%d: unknown placeholder '{{%s}}': variable '%s' is not "
                                    "declared in template.yaml",
                                    file, line, key, key + 4);
            return core_err_set(err, CORE_E_INVAL,
                                "%s:%d: unknown placeholder '{{%s}}' (use {{name}}, {{team}} or "
                                "{{var.KEY}})",
                                file, line, key);
        }
        if (core_buf_adds(dst, val))
            return core_err_set(err, CORE_E_NOMEM, "out of memory");
        i = e + 2;
    }
    return 0;
}

static bool wants_render(const struct template *t, const char *rel)
{
    if (!t->render)
        return true; /* no list: render everything */
    for (size_t i = 0; i < t->nrender; i++)
        if (fnmatch(t->render[i], rel, 0) == 0)
            return true;
    return false;
}

static int add_file(struct walk *w, const char *src, int mode, struct core_err *err)
{
    if (w->out->n >= TEMPLATE_FILES_MAX)
        return core_err_set(err, CORE_E_TOO_BIG, "template '%s' has more than %d files",
                            w->t->name, TEMPLATE_FILES_MAX);
    if (w->out->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 32;
        struct template_file *f = core_realloc(w->out->files, cap * sizeof(*f));
        if (!f)
            return core_err_set(err, CORE_E_NOMEM, "out of memory");
        w->out->files = f;
        w->cap = cap;
    }
    char *text = NULL;
    size_t len = 0;
    int rc = core_file_read(src, TEMPLATE_FILE_MAX, &text, &len, err);
    if (rc)
        return rc;
    struct core_buf path, data;
    core_buf_init(&path, PATH_MAX);
    core_buf_init(&data, 0);
    char where[PATH_MAX + 16];
    snprintf(where, sizeof(where), "%s (path)", src);
    rc = render_text(w, where, w->rel.data, w->rel.len, &path, err);
    if (!rc && wants_render(w->t, w->rel.data))
        rc = render_text(w, src, text, len, &data, err);
    else if (!rc && core_buf_add(&data, text, len))
        rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
    core_free(text);
    if (rc) {
        core_buf_release(&path);
        core_buf_release(&data);
        return rc;
    }
    struct template_file *f = &w->out->files[w->out->n++];
    f->mode = mode & 0777;
    f->path = core_buf_detach(&path, NULL);
    f->data = core_buf_detach(&data, &f->len);
    return 0;
}

static int walk_dir(struct walk *w, const char *dir, struct core_err *err)
{
    struct dirent **ents = NULL;
    int m = scandir(dir, &ents, NULL, alphasort);
    if (m < 0)
        return core_err_set(err, CORE_E_IO, "cannot list '%s': %s", dir, strerror(errno));
    int rc = 0;
    for (int i = 0; i < m; i++) {
        const char *nm = ents[i]->d_name;
        if (rc || strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0)
            continue;
        char full[PATH_MAX];
        snprintf(full, sizeof(full), "%s/%s", dir, nm);
        size_t keep = w->rel.len;
        if ((w->rel.len && core_buf_addc(&w->rel, '/')) || core_buf_adds(&w->rel, nm)) {
            rc = core_err_set(err, CORE_E_TOO_BIG, "path too long in template: '%s'", full);
            continue;
        }
        struct stat sb;
        if (lstat(full, &sb) != 0)
            rc = core_err_set(err, CORE_E_IO, "cannot stat '%s': %s", full, strerror(errno));
        else if (S_ISDIR(sb.st_mode))
            rc = walk_dir(w, full, err);
        else if (S_ISREG(sb.st_mode))
            rc = add_file(w, full, (int)sb.st_mode, err);
        else
            rc = core_err_set(err, CORE_E_INVAL,
                              "'%s' is not a regular file or directory (templates may not hold "
                              "symlinks or special files)",
                              full);
        w->rel.len = keep;
        w->rel.data[keep] = 0;
    }
    for (int i = 0; i < m; i++)
        free(ents[i]);
    free(ents);
    return rc;
}

int template_render(const struct template *t, const struct template_values *v,
                   struct template_output *out, struct core_err *err)
{
    memset(out, 0, sizeof(*out));
    struct walk w = {.t = t, .v = v, .out = out};
    core_buf_init(&w.rel, PATH_MAX);
    struct core_buf files;
    core_buf_init(&files, 0);
    int rc = core_buf_addf(&files, "%s/files", t->dir);
    if (!rc && !is_dir(files.data))
        rc = core_err_set(err, CORE_E_NOTFOUND, "template '%s' has no files/ directory (%s)",
                          t->name, files.data);
    if (!rc)
        rc = walk_dir(&w, files.data, err);
    core_buf_release(&files);
    core_buf_release(&w.rel);
    if (rc)
        template_output_release(out);
    return rc;
}

void template_output_release(struct template_output *out)
{
    for (size_t i = 0; i < out->n; i++) {
        core_free(out->files[i].path);
        core_free(out->files[i].data);
    }
    core_free(out->files);
    memset(out, 0, sizeof(*out));
}

/* ---- writing ------------------------------------------------------------------------------ */

bool template_dest_free(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return errno == ENOENT;
    if (!S_ISDIR(sb.st_mode))
        return false;
    DIR *d = opendir(path);
    if (!d)
        return false;
    bool empty = true;
    for (struct dirent *e; empty && (e = readdir(d));)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            empty = false;
    closedir(d);
    return empty;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(p);
    return 0;
}

/* The process umask without changing it (the server writes templates from several threads, and
 * umask(2) can only be read by setting it). Falls back to umask(2) without /proc. */
static mode_t current_umask(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    char line[256];
    unsigned int m = 0;
    bool found = false;
    while (f && !found && fgets(line, sizeof(line), f))
        found = sscanf(line, "Umask: %o", &m) == 1;
    if (f)
        fclose(f);
    if (found)
        return (mode_t)(m & 0777);
    mode_t um = umask(022);
    umask(um);
    return um;
}

void template_remove(const char *dir)
{
    if (dir && *dir)
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int write_one(const char *root, const struct template_file *f, mode_t um,
                     struct core_err *err)
{
    char full[PATH_MAX];
    if ((size_t)snprintf(full, sizeof(full), "%s/%s", root, f->path) >= sizeof(full))
        return core_err_set(err, CORE_E_TOO_BIG, "path too long: '%s'", f->path);
    if (strstr(f->path, "..") && (strncmp(f->path, "../", 3) == 0 || strstr(f->path, "/../")))
        return core_err_set(err, CORE_E_INVAL, "rendered path '%s' leaves the service directory",
                            f->path);
    char *slash = strrchr(full, '/');
    *slash = 0;
    int rc = core_mkdir_p(full, 0777 & ~um, err);
    *slash = '/';
    if (rc)
        return rc;
    int fd = open(full, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)f->mode & ~um);
    if (fd < 0)
        return core_err_set(err, CORE_E_IO, "cannot create '%s': %s", full, strerror(errno));
    size_t off = 0;
    while (off < f->len) {
        ssize_t n = write(fd, f->data + off, f->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = core_err_set(err, CORE_E_IO, "cannot write '%s': %s", full, strerror(errno));
            break;
        }
        off += (size_t)n;
    }
    if (!rc && fchmod(fd, (mode_t)f->mode & ~um) != 0)
        rc = core_err_set(err, CORE_E_IO, "cannot chmod '%s': %s", full, strerror(errno));
    if (close(fd) != 0 && !rc)
        rc = core_err_set(err, CORE_E_IO, "cannot write '%s': %s", full, strerror(errno));
    return rc;
}

int template_write(const char *dest, const struct template_output *out, struct core_err *err)
{
    if (!template_dest_free(dest))
        return core_err_set(err, CORE_E_CONFLICT, "'%s' already exists and is not empty", dest);
    char buf[PATH_MAX], parent[PATH_MAX], base[NAME_MAX + 1];
    snprintf(buf, sizeof(buf), "%s", dest);
    size_t n = strlen(buf);
    while (n > 1 && buf[n - 1] == '/')
        buf[--n] = 0;
    snprintf(base, sizeof(base), "%s", basename(buf));
    snprintf(buf, sizeof(buf), "%s", dest);
    snprintf(parent, sizeof(parent), "%s", dirname(buf));
    mode_t um = current_umask();
    int rc = core_mkdir_p(parent, 0777 & ~um, err);
    if (rc)
        return rc;
    char stage[PATH_MAX];
    if ((size_t)snprintf(stage, sizeof(stage), "%s/.%s.pave-init-XXXXXX", parent, base) >=
        sizeof(stage))
        return core_err_set(err, CORE_E_TOO_BIG, "path too long: '%s'", dest);
    if (!mkdtemp(stage))
        return core_err_set(err, CORE_E_IO, "cannot create a directory in '%s': %s", parent,
                            strerror(errno));
    for (size_t i = 0; i < out->n && !rc; i++)
        rc = write_one(stage, &out->files[i], um, err);
    if (!rc && chmod(stage, 0777 & ~um) != 0)
        rc = core_err_set(err, CORE_E_IO, "cannot chmod '%s': %s", stage, strerror(errno));
    if (!rc) {
        struct stat sb;
        if (lstat(dest, &sb) == 0 && rmdir(dest) != 0) /* an empty directory may be reused */
            rc = core_err_set(err, CORE_E_CONFLICT, "'%s' already exists and is not empty",
                              dest);
    }
    if (!rc && rename(stage, dest) != 0)
        rc = core_err_set(err, CORE_E_IO, "cannot rename '%s' to '%s': %s", stage, dest,
                          strerror(errno));
    if (rc)
        nftw(stage, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}
