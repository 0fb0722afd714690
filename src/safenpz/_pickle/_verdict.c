/* Skeleton: the compiled pre-check of pickle streams (see _prescan.py).
 * check() answers 0 ("not proven": the pure-Python scan decides). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *
verdict_check(PyObject *self, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t max_depth, max_items;
    int encoding;
    if (!PyArg_ParseTuple(args, "y*nni", &view, &max_depth, &max_items, &encoding))
        return NULL;
    PyBuffer_Release(&view);
    return PyLong_FromLong(0);
}

static PyMethodDef methods[] = {
    {"check", verdict_check, METH_VARARGS, "check(data, max_depth, max_items, encoding) -> int"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_verdict", NULL, -1, methods,
};

PyMODINIT_FUNC
PyInit__verdict(void)
{
    return PyModule_Create(&module);
}
