# Provides the INTERFACE target nd_blas (CBLAS from OpenBLAS) and, when the library
# comes from the scipy-openblas32 wheel, ND_BLAS_RPATH for the installed extension.
#
# The wheel's cblas.h declares scipy_-prefixed symbols; csrc/nd_blas.h maps the plain
# cblas_* names onto them when ND_BLAS_SCIPY_PREFIX is defined.

add_library(nd_blas INTERFACE)
set(ND_BLAS_RPATH "")
set(_nd_blas_found FALSE)

if(ND_BLAS STREQUAL "auto" OR ND_BLAS STREQUAL "system")
  find_path(ND_SYSTEM_CBLAS_INCLUDE cblas.h PATH_SUFFIXES openblas openblas-pthread)
  find_library(ND_SYSTEM_OPENBLAS NAMES openblas openblas64 PATH_SUFFIXES openblas-pthread)
  if(ND_SYSTEM_CBLAS_INCLUDE AND ND_SYSTEM_OPENBLAS)
    target_include_directories(nd_blas INTERFACE ${ND_SYSTEM_CBLAS_INCLUDE})
    target_link_libraries(nd_blas INTERFACE ${ND_SYSTEM_OPENBLAS})
    set(_nd_blas_found TRUE)
    set(ND_BLAS_SOURCE "system")
    message(STATUS "neurodyn: system OpenBLAS ${ND_SYSTEM_OPENBLAS}")
  elseif(ND_BLAS STREQUAL "system")
    message(FATAL_ERROR "neurodyn: ND_BLAS=system but no OpenBLAS (cblas.h + libopenblas) was found")
  endif()
endif()

if(NOT _nd_blas_found)
  if(NOT Python_Interpreter_FOUND)
    message(FATAL_ERROR "neurodyn: no system OpenBLAS and no Python interpreter to locate scipy-openblas32")
  endif()
  execute_process(
    COMMAND ${Python_EXECUTABLE} -c "import scipy_openblas32 as s; print(s.get_include_dir()); print(s.get_lib_dir()); print(s.get_library(fullname=True))"
    OUTPUT_VARIABLE _nd_wheel_out RESULT_VARIABLE _nd_wheel_rc ERROR_VARIABLE _nd_wheel_err
    OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT _nd_wheel_rc EQUAL 0)
    message(FATAL_ERROR "neurodyn: no system OpenBLAS found and the scipy-openblas32 wheel is not importable "
                        "by ${Python_EXECUTABLE} (pip install scipy-openblas32): ${_nd_wheel_err}")
  endif()
  string(REPLACE "\n" ";" _nd_wheel_out "${_nd_wheel_out}")
  list(GET _nd_wheel_out 0 ND_WHEEL_INCLUDE)
  list(GET _nd_wheel_out 1 ND_WHEEL_LIBDIR)
  list(GET _nd_wheel_out 2 ND_WHEEL_LIBNAME)
  target_include_directories(nd_blas INTERFACE ${ND_WHEEL_INCLUDE})
  target_link_libraries(nd_blas INTERFACE ${ND_WHEEL_LIBDIR}/${ND_WHEEL_LIBNAME})
  target_compile_definitions(nd_blas INTERFACE ND_BLAS_SCIPY_PREFIX=1)
  # Installed layout: site-packages/neurodyn/_core*.so next to site-packages/scipy_openblas32/lib.
  set(ND_BLAS_RPATH "$ORIGIN/../scipy_openblas32/lib")
  set(ND_BLAS_SOURCE "scipy-openblas32")
  message(STATUS "neurodyn: OpenBLAS from the scipy-openblas32 wheel in ${ND_WHEEL_LIBDIR}")
endif()
