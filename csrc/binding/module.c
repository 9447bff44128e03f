/* neurodyn._core: multi-phase initialisation and the module state. */
#define ND_BIND_MODULE /* this file owns the NumPy API table */
#include "nd_bind.h"

#include "nd_blas.h"

nd_module_state *nd_state(PyObject *module) { return (nd_module_state *)PyModule_GetState(module); }

static int nd_add_defaults_and_tables(PyObject *module);

static int nd_exec(PyObject *module)
{
    if (PyArray_ImportNumPyAPI() < 0)
        return -1;
    /* OpenBLAS's first buffer now, where a failure can be raised (nd_blas.h) */
    if (nd_blas_prepare() != 0) {
        PyErr_SetString(PyExc_MemoryError, "no address space left for OpenBLAS's 32 MiB work buffer");
        return -1;
    }
    nd_module_state *st = nd_state(module);
    st->integration_error = PyErr_NewExceptionWithDoc(
        "neurodyn.IntegrationError",
        "An ODE solver could not reach the end time.\n\n"
        "Attributes\n----------\n"
        "t : float\n    Time the solution reached.\n"
        "y : ndarray\n    State at time t (shape of y0).\n"
        "ts : ndarray\n    Output times filled before the failure.\n"
        "ys : ndarray\n    Solution at those times, shape (len(ts),) + y0.shape.\n"
        "status : str\n    Reason: 'max_steps', 'step_underflow', 'nonfinite' or 'interrupted'.\n"
        "info : dict\n    Solver counters (nfev, accepted, rejected).\n",
        PyExc_RuntimeError, NULL);
    if (!st->integration_error)
        return -1;
    if (PyModule_AddObjectRef(module, "IntegrationError", st->integration_error) < 0)
        return -1;
    return nd_add_defaults_and_tables(module);
}

static int nd_traverse(PyObject *module, visitproc visit, void *arg)
{
    Py_VISIT(nd_state(module)->integration_error);
    return 0;
}

static int nd_clear(PyObject *module)
{
    Py_CLEAR(nd_state(module)->integration_error);
    return 0;
}

static void nd_free(void *module) { nd_clear((PyObject *)module); }

static PyModuleDef_Slot nd_slots[] = {{Py_mod_exec, nd_exec}, {0, NULL}};

/* Filled at import from the per-family tables. */
static PyMethodDef nd_methods[128];

static struct PyModuleDef nd_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "neurodyn._core",
    .m_doc = "neurodyn's C kernels. Use the neurodyn package; this module is its private binding.",
    .m_size = sizeof(nd_module_state),
    .m_methods = nd_methods,
    .m_slots = nd_slots,
    .m_traverse = nd_traverse,
    .m_clear = nd_clear,
    .m_free = nd_free,
};

static const nd_family *const nd_families[] = {&nd_ode_family,      &nd_nn_family,     &nd_liquid_family,    &nd_snn_family,
                                               &nd_hopfield_family, &nd_ebm_family,    &nd_hybrid_family,    &nd_sde_family,
                                               &nd_util_family,     &nd_fields_family, &nd_ode_stiff_family, &nd_memories_family,
                                               &nd_chaos_family};
#define ND_FAMILY_COUNT (sizeof nd_families / sizeof nd_families[0])

static int nd_add_method(size_t *k, PyMethodDef m)
{
    if (*k >= sizeof nd_methods / sizeof nd_methods[0] - 1) {
        PyErr_SetString(PyExc_SystemError, "neurodyn._core: method table too small");
        return -1;
    }
    nd_methods[(*k)++] = m;
    return 0;
}

static int nd_collect_methods(void)
{
    size_t k = 0;
    for (size_t i = 0; i < ND_FAMILY_COUNT; ++i) {
        const nd_family *f = nd_families[i];
        for (const nd_entry *const *e = f->entries; *e; ++e)
            if (nd_add_method(&k, (PyMethodDef){(*e)->name, (*e)->py, METH_VARARGS | METH_KEYWORDS, (*e)->doc}) < 0)
                return -1;
        for (PyMethodDef *m = f->methods; m && m->ml_name; ++m)
            if (nd_add_method(&k, *m) < 0)
                return -1;
    }
    return 0;
}

/* _core.DEFAULTS[entry][arg] and _core.TABLES[name]: the kernels' defaults and code tables,
 * which Python reads instead of repeating them. */
static int nd_add_defaults_and_tables(PyObject *module)
{
    PyObject *defaults = PyDict_New(), *tables = PyDict_New();
    int ok = defaults && tables;
    for (size_t i = 0; ok && i < ND_FAMILY_COUNT; ++i) {
        const nd_family *f = nd_families[i];
        for (const nd_entry *const *e = f->entries; ok && *e; ++e) {
            PyObject *d = nd_entry_defaults(*e);
            ok = d && PyDict_SetItemString(defaults, (*e)->name, d) == 0;
            Py_XDECREF(d);
        }
        for (const nd_table *t = f->tables; ok && t && t->name; ++t) {
            Py_ssize_t n = 0;
            while (t->names[n])
                ++n;
            PyObject *tuple = PyTuple_New(n);
            for (Py_ssize_t j = 0; tuple && j < n; ++j) {
                PyObject *s = PyUnicode_FromString(t->names[j]);
                if (!s) {
                    Py_CLEAR(tuple);
                    break;
                }
                PyTuple_SET_ITEM(tuple, j, s);
            }
            ok = tuple && PyDict_SetItemString(tables, t->name, tuple) == 0;
            Py_XDECREF(tuple);
        }
    }
    ok = ok && PyModule_AddObjectRef(module, "DEFAULTS", defaults) == 0 &&
         PyModule_AddObjectRef(module, "TABLES", tables) == 0;
    Py_XDECREF(defaults);
    Py_XDECREF(tables);
    return ok ? 0 : -1;
}

PyMODINIT_FUNC PyInit__core(void)
{
    if (nd_collect_methods() < 0)
        return NULL;
    return PyModuleDef_Init(&nd_module);
}
