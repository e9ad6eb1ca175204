/* The built-in Sigma rules (sigma/builtin.yaml, embedded by scripts/embed-text) and loading a
 * rules path (security.h). The embedded file is a YAML stream, one document per rule; each is
 * compiled on its own so a rejection names the rule. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "security/security.h"

extern const char security_sigma_builtin_yaml[];

/* returns: the start of the next document separator line ("---") at or after s, or NULL. */
static const char *next_sep(const char *s)
{
    for (const char *p = s; (p = strstr(p, "---")); p += 3) {
        bool bol = p == s || p[-1] == '\n';
        bool eol = p[3] == '\n' || p[3] == 0;
        if (bol && eol)
            return p;
    }
    return NULL;
}

int security_sigma_add_builtin(struct security_sigma_set *s, struct core_err *err)
{
    const char *p = security_sigma_builtin_yaml;
    int n = 0;
    while (p && *p) {
        const char *sep = next_sep(p);
        size_t len = sep ? (size_t)(sep - p) : strlen(p);
        char name[32];
        snprintf(name, sizeof(name), "builtin:%d", ++n);
        int rc = security_sigma_add(s, name, p, len, err);
        if (rc)
            return rc;
        p = sep ? sep + 3 : NULL;
        if (p && *p == '\n')
            p++;
    }
    return 0;
}

int security_sigma_add_path(struct security_sigma_set *s, const char *path, struct core_err *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return core_err_set(err, CORE_E_IO, "no rules at '%s'", path);
    if (S_ISDIR(st.st_mode))
        return security_sigma_add_dir(s, path, err);
    char *text = NULL;
    size_t len = 0;
    int rc = core_file_read(path, 1u << 20, &text, &len, err);
    if (!rc) {
        struct core_err e = {0};
        /* a rule that does not load is recorded as rejected; only NOMEM stops */
        if (security_sigma_add(s, path, text, len, &e) == CORE_E_NOMEM)
            rc = core_err_set(err, CORE_E_NOMEM, "out of memory");
    }
    core_free(text);
    return rc;
}
