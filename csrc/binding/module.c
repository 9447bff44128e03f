/* neurodyn._core: multi-phase initialisation and the module state. */
#define ND_BIND_MODULE /* this file owns the NumPy API table */
#include "nd_bind.h"

nd_module_state *nd_state(PyObject *module) { return (nd_module_state *)PyModule_GetState(module); }

static int nd_exec(PyObject *module)
{
    if (PyArray_ImportNumPyAPI() < 0)
        return -1;
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
    return 0;
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
static PyMethodDef nd_methods[64];

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

static int nd_collect_methods(void)
{
    PyMethodDef *tables[] = {nd_ode_methods, nd_nn_methods, nd_liquid_methods, nd_snn_methods, nd_hopfield_methods, nd_ebm_methods, nd_util_methods};
    size_t k = 0, cap = sizeof nd_methods / sizeof nd_methods[0] - 1;
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; ++i)
        for (PyMethodDef *m = tables[i]; m->ml_name; ++m) {
            if (k >= cap) {
                PyErr_SetString(PyExc_SystemError, "neurodyn._core: method table too small");
                return -1;
            }
            nd_methods[k++] = *m;
        }
    return 0;
}

PyMODINIT_FUNC PyInit__core(void)
{
    if (nd_collect_methods() < 0)
        return NULL;
    return PyModuleDef_Init(&nd_module);
}
